"""Frame times of /map in headless Chromium: does a 100k-point map stay smooth to zoom and pan?

    python bench/map_frames.py --db /tmp/pwmap/map-100000.db [--frames 90] [--chromium /usr/bin/chromium]

The store is one that ``bench/map_build.py`` made (phases ``make`` and ``build``: N synthetic
papers, a real ``build_map``). It is served by the real app (uvicorn on 127.0.0.1), opened at
/map in Debian's Chromium (Playwright), and driven as a person drives it, one input per
animation frame for ``--frames`` frames:

* ``zoom``: a wheel step at the centre (in, then out, so the view stays on the map);
* ``pan``: a real mouse button held down, then one pointer move of 7 px per frame.

Every input makes map.js repaint every point into an ImageData, then the labels and
highlights. Measured in the page, in wall time: the paint (between two frame callbacks queued
just before and just after map.js's own) and the interval from one frame to the next (16.7 ms
is 60 fps); then, once the view settles, the longest main-thread task (map.js names the
dot in the middle 120 ms after the last frame: 0 means no task over 50 ms). Three screens: desktop at device pixel ratio 1 and 2
(1280x900), and a phone (390x844, ratio 3). Chromium runs with ``--disable-gpu`` on these CPU
machines: the canvas is rasterised in software, so a laptop's figures are lower.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from web_support import live_server  # noqa: E402  (the tests' real uvicorn-in-a-thread server)

SCREENS = {
    "desktop-dpr1": dict(viewport={"width": 1280, "height": 900}, device_scale_factor=1),
    "desktop-dpr2": dict(viewport={"width": 1280, "height": 900}, device_scale_factor=2),
    "phone-dpr3": dict(viewport={"width": 390, "height": 844}, device_scale_factor=3, is_mobile=True, has_touch=True),
}

# One input per animation frame; resolves to [[frame interval ms, paint ms], ...]. Each round
# queues three frame callbacks in this order: a mark, map.js's paint (queued by the input's
# handler) and a second mark, so the marks bracket the paint; the interval is mark to mark
# across rounds, in wall time (performance.now), which is what a person sees.
DRIVE = """async ([kind, frames]) => {
  const c = document.getElementById("map-canvas");
  const r = c.getBoundingClientRect();
  const cx = r.left + r.width / 2, cy = r.top + r.height / 2;
  const mark = () => new Promise((ok) => requestAnimationFrame(() => ok(performance.now())));
  const out = [];
  let prev = null;
  for (let i = 0; i < frames; i++) {
    const before = mark();
    if (kind === "zoom") {
      const dy = (i % 40) < 20 ? -40 : 40;
      c.dispatchEvent(new WheelEvent("wheel", {deltaY: dy, clientX: cx, clientY: cy, bubbles: true, cancelable: true}));
    } else {
      const step = (i % 60) < 30 ? 7 : -7;
      c.dispatchEvent(new PointerEvent("pointermove", {pointerId: 1, pointerType: "mouse", isPrimary: true,
        clientX: cx + step * ((i % 30) + 1) / 2, clientY: cy, buttons: 1, bubbles: true}));
    }
    const after = mark();
    const a = await before, b = await after;
    if (prev !== null) out.push([a - prev, b - a]);
    prev = a;
  }
  return out;
}"""


# After the last input the view settles: map.js then names the dot in the middle (a timer,
# 120 ms on). Resolves to the longest main-thread task (ms, 0 if none over 50 ms) in 600 ms.
SETTLE = """async () => {
  const c = document.getElementById("map-canvas");
  let longest = 0;
  const obs = new PerformanceObserver((list) => { for (const e of list.getEntries()) longest = Math.max(longest, e.duration); });
  obs.observe({type: "longtask"});
  c.dispatchEvent(new WheelEvent("wheel", {deltaY: -40, clientX: 300, clientY: 300, bubbles: true, cancelable: true}));
  await new Promise((ok) => setTimeout(ok, 600));
  obs.disconnect();
  return longest;
}"""


def _stats(samples: list[float]) -> dict:
    s = sorted(samples)
    p95 = s[min(len(s) - 1, int(0.95 * len(s)))]
    return {"p50": round(statistics.median(s), 1), "p95": round(p95, 1), "max": round(s[-1], 1),
            "over_20": round(sum(x > 20 for x in s) / len(s), 2), "over_33": round(sum(x > 33.4 for x in s) / len(s), 2)}


def measure(browser, url: str, screen: str, frames: int) -> list[dict]:
    ctx = browser.new_context(**SCREENS[screen])
    page = ctx.new_page()
    t0 = time.perf_counter()
    page.goto(url + "/map")
    page.wait_for_selector("#map-canvas[data-ready='1']", timeout=120000)
    load_s = time.perf_counter() - t0
    points = int(page.locator("#map-canvas").get_attribute("data-points"))
    page.wait_for_timeout(500)
    rows = []
    for kind in ("zoom", "pan"):
        if kind == "pan":
            box = page.locator("#map-canvas").bounding_box()
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.mouse.down()  # a real press: map.js starts its drag (pointer 1 is the mouse)
        page.evaluate(DRIVE, [kind, 10])  # warm-up: JIT and the first ImageData
        got = page.evaluate(DRIVE, [kind, frames])
        if kind == "pan":
            page.mouse.up()
        rows.append({"screen": screen, "input": kind, "points": points, "load_s": round(load_s, 2),
                     "interval_ms": _stats([g[0] for g in got]), "paint_ms": _stats([g[1] for g in got]),
                     "settle_longest_task_ms": round(page.evaluate(SETTLE), 1)})
    ctx.close()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True, type=Path)
    ap.add_argument("--frames", type=int, default=90)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--screens", default=",".join(SCREENS), help="comma-separated, of: " + ", ".join(SCREENS))
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    with live_server(args.db) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=args.chromium, headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        for screen in args.screens.split(","):
            for row in measure(browser, url, screen.strip(), args.frames):
                print(json.dumps(row), flush=True)
        browser.close()


if __name__ == "__main__":
    main()
