"""Server-side charts for the trends page (SVG) and the weekly digest (PNG, Pillow).

The SVG writer is deliberately small: lines and bars, every text escaped, colours from
``currentColor`` and CSS classes so the site's dark mode applies. No script, no CDN.
"""

from __future__ import annotations

import io
from html import escape
from typing import Sequence

from paperwire.topics.trends import Trends, growth_text

PALETTE = ["#2f6fde", "#e0692b", "#2a9d63", "#c23b6b", "#8a5cd1", "#b08a12", "#1f9bb0", "#7a7a7a",
           "#d14949", "#4f8f2f", "#9c5b2e", "#5470c6"]


def _fmt(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def line_chart(trends: Trends, *, series: str = "papers", top: int = 8, width: int = 720, height: int = 260,
               title: str = "") -> str:
    """Weekly lines for the ``top`` biggest clusters (``series``: "papers" or "upvotes")."""
    pad_l, pad_r, pad_t, pad_b = 40, 12, 24, 28
    rows = trends.clusters[:top]
    values = [getattr(r, series) for r in rows]
    peak = max([max(v) for v in values if v] + [1])
    n = len(trends.weeks)
    w, h = width - pad_l - pad_r, height - pad_t - pad_b

    def px(i: int) -> float:
        return pad_l + (w * i / max(n - 1, 1))

    def py(v: float) -> float:
        return pad_t + h - h * v / peak

    parts = [f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
             f'role="img" aria-label="{escape(title or series)}">']
    if title:
        parts.append(f'<text class="chart-title" x="{pad_l}" y="15">{escape(title)}</text>')
    for frac in (0, 0.5, 1):
        y = py(peak * frac)
        parts.append(f'<line class="grid" x1="{pad_l}" x2="{width - pad_r}" y1="{_fmt(y)}" y2="{_fmt(y)}"/>')
        parts.append(f'<text class="axis" x="{pad_l - 6}" y="{_fmt(y + 4)}" text-anchor="end">'
                     f'{_fmt(peak * frac)}</text>')
    for i, d in enumerate(trends.weeks):
        if i % max(1, n // 6) == 0 or i == n - 1:
            parts.append(f'<text class="axis" x="{_fmt(px(i))}" y="{height - 8}" text-anchor="middle">'
                         f'{escape(d.strftime("%b %d"))}</text>')
    for k, (row, vals) in enumerate(zip(rows, values)):
        colour = PALETTE[k % len(PALETTE)]
        pts = " ".join(f"{_fmt(px(i))},{_fmt(py(v))}" for i, v in enumerate(vals))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{pts}">'
                     f'<title>{escape(row.label)}</title></polyline>')
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(items: Sequence[tuple[str, float, str]], *, width: int = 720, bar: int = 22,
              title: str = "") -> str:
    """Horizontal bars: ``(label, value, value text)`` per row, biggest first as given."""
    pad_t = 24 if title else 6
    label_w = min(320, width // 2)
    height = pad_t + bar * len(items) + 6
    peak = max([v for _, v, _ in items] + [1e-9])
    parts = [f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
             f'role="img" aria-label="{escape(title or "bar chart")}">']
    if title:
        parts.append(f'<text class="chart-title" x="0" y="15">{escape(title)}</text>')
    for i, (label, value, text) in enumerate(items):
        y = pad_t + i * bar
        length = max(1.0, (width - label_w - 70) * value / peak)
        short = label if len(label) <= 44 else label[:43] + "…"
        parts.append(f'<text class="axis" x="{label_w - 8}" y="{y + bar * 0.68:.1f}" text-anchor="end">'
                     f'{escape(short)}<title>{escape(label)}</title></text>')
        parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{length:.1f}" height="{bar - 6}" rx="3" '
                     f'fill="{PALETTE[i % len(PALETTE)]}"/>')
        parts.append(f'<text class="axis" x="{label_w + length + 6:.1f}" y="{y + bar * 0.68:.1f}">'
                     f'{escape(text)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def legend(trends: Trends, top: int = 8) -> list[tuple[str, str]]:
    """``(colour, label)`` pairs matching :func:`line_chart`'s lines."""
    return [(PALETTE[k % len(PALETTE)], r.label) for k, r in enumerate(trends.clusters[:top])]


def rising_png(trends: Trends, *, width: int = 600) -> bytes | None:
    """A PNG of the rising topics for the weekly digest; None when nothing is rising."""
    if not trends.rising:
        return None
    from PIL import Image, ImageDraw, ImageFont

    rows = trends.rising
    bar, pad = 34, 16
    height = pad * 2 + 28 + bar * len(rows)
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    try:
        font = ImageFont.load_default(size=15)
        bold = ImageFont.load_default(size=17)
    except TypeError:  # Pillow < 10.1 has one bitmap size
        font = bold = ImageFont.load_default()
    week = trends.weeks[-1].strftime("%b %d, %Y") if trends.weeks else ""
    draw.text((pad, pad), f"Rising topics, week of {week}", fill="#111111", font=bold)
    peak = max(r["this_week"] for r in rows)
    label_w = width * 0.55
    for i, r in enumerate(rows):
        y = pad + 28 + i * bar
        label = r["label"] if len(r["label"]) <= 40 else r["label"][:39] + "…"
        draw.text((pad, y + 8), label, fill="#222222", font=font)
        length = max(4, (width - label_w - pad - 90) * r["this_week"] / peak)
        draw.rounded_rectangle((label_w, y + 6, label_w + length, y + bar - 6), radius=4,
                               fill=PALETTE[i % len(PALETTE)])
        draw.text((label_w + length + 8, y + 8), f"{r['this_week']} ({growth_text(r)})", fill="#222222", font=font)
    buf = io.BytesIO()
    # A 64-colour palette (bars, text and its anti-aliasing) is under half the bytes of RGB,
    # and the weekly digest carries this image in every recipient's mail.
    img.quantize(colors=64, method=Image.Quantize.MEDIANCUT).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def empty_png(message: str, *, width: int = 600, height: int = 60) -> bytes:
    """A small PNG that says ``message`` (an image link must never break)."""
    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("RGB", (width, height), "white")
    try:
        font = ImageFont.load_default(size=15)
    except TypeError:
        font = ImageFont.load_default()
    ImageDraw.Draw(img).text((16, 20), message, fill="#555555", font=font)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()
