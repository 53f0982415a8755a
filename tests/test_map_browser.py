"""The topic map as a person uses it, in Debian's headless Chromium: open /map on the demo
corpus, zoom with the wheel, hover a dot for its title, click it and land on its paper; the
same by touch on a phone; dark mode. Screenshots go to artifacts/screenshots/ and are checked
for a drawn canvas (distinct colours counted with Pillow)."""

from __future__ import annotations

import io
import os

import pytest

pytest.importorskip("umap")

from browser_support import CHROMIUM, SHOTS, Watch  # noqa: E402
from web_support import demo_db, live_server  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} not installed")]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from paperwire.index.build import embed_missing
    from paperwire.index.embeddings import FakeEmbedder
    from paperwire.store.db import connect
    from paperwire.topics import map as topic_map

    db = demo_db(tmp_path_factory.mktemp("mapdemo"))
    conn = connect(db)
    embed_missing(conn, FakeEmbedder(64))  # the demo corpus, embedded offline and fast
    topic_map.build_map(conn, seed=0)
    conn.close()
    with live_server(db) as url:
        yield url


def _colours(png: bytes) -> int:
    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB")
    return len(img.getcolors(maxcolors=1 << 24))


def _canvas_shot(page, name: str) -> int:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=False)
    return _colours(page.locator("#map-canvas").screenshot())


def _until(page, check, tries: int = 100) -> None:
    """Poll ``check`` from Python: page-side predicates (wait_for_function) may need eval,
    which the site's CSP (script-src 'self') refuses."""
    for _ in range(tries):
        if check():
            return
        page.wait_for_timeout(100)
    raise AssertionError("timed out waiting for the page")


def _probe(page):
    """The settled probe dot (a dot near the middle with no neighbour within 20 px): (x, y, id)."""
    c = page.locator("#map-canvas")
    for _ in range(100):  # polled from here: a page-side predicate would need eval, which the CSP refuses
        if c.get_attribute("data-probe-id") and c.get_attribute("data-probe-scale") == c.get_attribute("data-scale"):
            break
        page.wait_for_timeout(100)
    else:
        raise AssertionError("the map never settled on a probe dot")
    return float(c.get_attribute("data-probe-x")), float(c.get_attribute("data-probe-y")), c.get_attribute("data-probe-id")


def _ready(page):
    page.wait_for_selector("#map-canvas[data-ready='1']", timeout=30000)
    page.wait_for_timeout(200)  # one animation frame after the data arrived


def _view(canvas) -> tuple[float, float]:
    tx, ty = canvas.get_attribute("data-view").split(",")
    return float(tx), float(ty)


PHONE = dict(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True)


def _open_map(browser, site, **context):
    """A fresh context on /map, data drawn: (context, page, watch, canvas, its centre)."""
    ctx = browser.new_context(**(context or {"viewport": {"width": 1280, "height": 900}}))
    page = ctx.new_page()
    watch = Watch(page)
    page.goto(site + "/map")
    _ready(page)
    canvas = page.locator("#map-canvas")
    box = canvas.bounding_box()
    return ctx, page, watch, canvas, (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)


def test_map_zoom_hover_click_desktop(browser, site):
    ctx, page, watch, canvas, _ = _open_map(browser, site)
    assert int(canvas.get_attribute("data-points")) > 2000
    assert _canvas_shot(page, "map-desktop.png") > 40  # dots in many cluster colours and labels, not blank
    assert canvas.get_attribute("data-label-level") == "coarse"
    coarse_shown = canvas.get_attribute("data-labels").split(" | ")
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    for _ in range(3):
        page.mouse.wheel(0, -400)
        page.wait_for_timeout(150)
    assert float(canvas.get_attribute("data-scale")) > 2
    # Zoomed in, the finer clusters' labels take over: two zoom levels of labels.
    assert canvas.get_attribute("data-label-level") == "fine"
    fine_shown = canvas.get_attribute("data-labels").split(" | ")
    assert len(coarse_shown) >= 3 and fine_shown[0] and set(fine_shown) != set(coarse_shown)
    _canvas_shot(page, "map-desktop-zoomed.png")
    x, y, pid = _probe(page)
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + x, box["y"] + y)
    page.wait_for_selector("#map-tip:not([hidden]) strong", timeout=5000)
    _until(page, lambda: page.locator("#map-tip strong").inner_text() != pid)  # the title arrived, not just the id
    tip = page.locator("#map-tip strong").inner_text()
    page.mouse.click(box["x"] + x, box["y"] + y)
    page.wait_for_url("**/papers/**", timeout=10000)
    assert page.url.endswith("/papers/" + pid)
    assert page.locator("h1.paper-title").inner_text().strip()[:20] == tip.strip()[:20]
    assert watch.problems == [], watch.problems
    ctx.close()


def test_map_search_highlight_and_header_link(browser, site):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    watch = Watch(page)
    page.goto(site + "/")
    page.click("nav.mainnav a[href='/map']")
    _ready(page)
    before = page.locator("#map-canvas").screenshot()
    page.fill("#map-q", "language models")
    page.press("#map-q", "Enter")
    page.wait_for_selector("#map-canvas[data-hits]", timeout=20000)
    assert int(page.locator("#map-canvas").get_attribute("data-hits")) > 0
    assert "on the map" in page.locator("#map-note").inner_text()
    page.wait_for_timeout(200)
    assert page.locator("#map-canvas").screenshot() != before  # highlighted and zoomed to the hits
    page.check("#map-today")
    _until(page, lambda: "listed on" in page.locator("#map-note").inner_text())
    assert watch.problems == [], watch.problems
    ctx.close()


def test_map_on_a_phone_touch_and_dark(browser, site):
    ctx, page, watch, canvas, _ = _open_map(browser, site, color_scheme="dark", **PHONE)
    box = canvas.bounding_box()
    assert box["width"] <= 390 and box["height"] > 300  # fits the screen, no sideways scroll
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert _canvas_shot(page, "map-phone-dark.png") > 40
    bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert bg != "rgb(255, 255, 255)"  # dark mode applies
    for _ in range(2):
        page.locator("#map-in").tap()
        page.wait_for_timeout(80)
    assert float(canvas.get_attribute("data-scale")) > 2
    x, y, pid = _probe(page)
    box = canvas.bounding_box()  # tapping the zoom button may have scrolled the page
    page.touchscreen.tap(box["x"] + x, box["y"] + y)
    page.wait_for_url("**/papers/**", timeout=10000)
    assert page.url.endswith("/papers/" + pid)
    assert watch.problems == [], watch.problems
    ctx.close()


def test_map_pans_by_mouse_drag(browser, site):
    """Dragging moves the map by exactly the drag, and opens nothing."""
    ctx, page, watch, canvas, (x0, y0) = _open_map(browser, site)
    before = _view(canvas)
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x0 + 150, y0 + 90, steps=6)
    page.mouse.up()
    after = _view(canvas)
    assert abs(after[0] - before[0] - 150) < 1.5 and abs(after[1] - before[1] - 90) < 1.5, (before, after)
    assert page.url.endswith("/map")  # a drag is not a click: no paper opened
    assert watch.problems == [], watch.problems
    ctx.close()


def test_map_pans_by_finger_and_pinch_zooms_on_a_phone(browser, site):
    """One finger pans the map by its path; two fingers pinch-zoom by the ratio of their spread."""
    ctx, page, watch, canvas, (cx, cy) = _open_map(browser, site, **PHONE)
    cdp = ctx.new_cdp_session(page)

    def touch(kind, points):
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [
            {"x": x, "y": y, "id": i} for i, (x, y) in enumerate(points)]})

    before = _view(canvas)
    touch("touchStart", [(cx, cy)])
    for k in range(1, 7):
        touch("touchMove", [(cx - 10 * k, cy + 8 * k)])
    touch("touchEnd", [])
    after = _view(canvas)
    assert abs(after[0] - before[0] + 60) < 1.5 and abs(after[1] - before[1] - 48) < 1.5, (before, after)
    assert page.url.endswith("/map")
    scale = float(canvas.get_attribute("data-scale"))
    touch("touchStart", [(cx - 30, cy), (cx + 30, cy)])
    for k in range(1, 9):
        touch("touchMove", [(cx - 30 - 10 * k, cy), (cx + 30 + 10 * k, cy)])
    touch("touchEnd", [])
    zoomed = float(canvas.get_attribute("data-scale"))
    assert 3.5 < zoomed / scale < 3.8, (scale, zoomed)  # fingers 60 px -> 220 px apart: 3.67x
    _canvas_shot(page, "map-phone-pinched.png")
    assert watch.problems == [], watch.problems
    ctx.close()


def test_my_library_lights_up_on_the_map(browser, site):
    """A reader signs up, saves a paper from its page (the Save button), and "My library" on
    the map lights up exactly that paper."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    watch = Watch(page)
    page.goto(site + "/signup")
    page.fill("input[name=username]", "mapreader")
    page.fill("input[name=email]", "mapreader@example.org")
    page.fill("input[name=password]", "correct horse battery")
    with page.expect_navigation():
        page.locator("form[action='/signup'] button[type=submit]").click()
    page.goto(site + "/map")
    _ready(page)
    x, y, pid = _probe(page)  # a paper that is on the map
    page.goto(f"{site}/papers/{pid}")
    page.locator("form.save-form button.save-btn").first.click()
    page.wait_for_selector("form.save-form button.save-btn.saved", timeout=10000)
    page.goto(site + "/map")
    _ready(page)
    page.check("#map-library")
    _until(page, lambda: "on the map" in page.locator("#map-note").inner_text())
    canvas = page.locator("#map-canvas")
    assert canvas.get_attribute("data-library-hits") == "1"
    assert page.locator("#map-note").inner_text() == "1 saved paper on the map"
    _canvas_shot(page, "map-library.png")
    assert watch.problems == [], watch.problems
    ctx.close()
