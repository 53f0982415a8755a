"""Text-mode LaTeX where readers see it: paper page, cards, search snippets, Atom,
BibTeX, digest mails (text and HTML), and KaTeX's handling of an undefined macro in
headless Chromium."""

from __future__ import annotations

import email
import os
import xml.etree.ElementTree as ET
from email import policy

import pytest

from paperwire.ingest import import_records
from paperwire.model import PaperRecord
from paperwire.store.db import connect
from web_support import live_server, make_client

PID = "0704.0083"
TITLE = r"Schr{\"o}dinger's ``quantum'' {\em cosmology} -- a $\JJ$ test"
ABSTRACT = (r"The wave function is peaked about complex saddle-points of the {\em Lorentzian} path integral. "
            r"We cite Yndur\'ain, use \textbf{bold} claims, 50\% of $x^2$ cases and an undefined $\JJ$ macro. Broken $a^$. "
            "<script>window.__pwned=1</script>")
PLAIN_TITLE = "Schrödinger’s “quantum” cosmology – a $\\JJ$ test"


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "pw.db"
    conn = connect(path)
    import_records(conn, [PaperRecord(title=TITLE, abstract=ABSTRACT, source="test", arxiv_id=PID,
                                      authors=["C. Balázs", "E. L. Berger"], categories=["gr-qc"],
                                      published="2007-04-02T10:00:00Z")])
    try:
        from paperwire.index.build import update_index

        update_index(conn, semantic=False)
    except ImportError:
        pass
    conn.close()
    return path


def test_paper_page_renders_text_latex(db):
    with make_client(db) as c:
        html = c.get(f"/papers/{PID}").text
    assert "<title>Schrödinger’s “quantum” cosmology – a $\\JJ$ test · paperwire</title>" in html
    assert 'Schrödinger’s “quantum” <em>cosmology</em> – a $\\JJ$ test</h1>' in html
    assert "of the <em>Lorentzian</em> path integral" in html
    assert "Ynduráin, use <strong>bold</strong> claims, 50% of $x^2$ cases" in html
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html and "<script>window.__pwned" not in html
    assert "{\\em" not in html.split("<pre")[0]  # the BibTeX block keeps the source, nothing above it does


def test_card_and_search_snippet(db):
    with make_client(db) as c:
        feed = c.get("/papers/date/2007-04-02?sort=date").text
        found = c.get("/search", params={"q": "lorentzian"}).text
    assert "Schrödinger’s “quantum” <em>cosmology</em>" in feed
    assert "<em>Lorentzian</em> path integral" in feed
    assert "<em>cosmology</em>" in found
    assert "<em><mark>Lorentzian</mark></em>" in found
    assert "&lt;script&gt;" in found and "<script>window.__pwned" not in found


def test_atom_is_plain_text(db):
    with make_client(db) as c:
        body = c.get("/feeds/search.atom", params={"q": "lorentzian"}).content
    ns = {"a": "http://www.w3.org/2005/Atom"}
    entry = ET.fromstring(body).find("a:entry", ns)
    assert entry.find("a:title", ns).text == PLAIN_TITLE
    summary = entry.find("a:summary", ns).text
    assert "of the Lorentzian path integral. We cite Ynduráin, use bold claims, 50% of $x^2$" in summary
    assert "\\em" not in summary and "\\textbf" not in summary


def test_bibtex_route_keeps_source_escaped_once(db):
    with make_client(db) as c:
        bib = c.get(f"/papers/{PID}.bib").text
    assert bib.startswith("@misc{balazs2007schrodingers,")
    assert "title = {{Schr{\\\"o}dinger's ``quantum'' {\\em cosmology} -- a $\\JJ$ test}}" in bib
    assert "50\\% of $x^2$" in bib and "\\\\%" not in bib


def test_digest_text_and_html(db, tmp_path):
    from paperwire.digest.compose import Digest, Section
    from paperwire.digest.render import digest_message
    from paperwire.digest.subscriptions import Preferences, subscribe
    from paperwire.settings import Settings
    from paperwire.store.papers import get_paper

    settings = Settings(db_path=db, secret_key="k" * 32, base_url="https://papers.example",
                        mail_from="paperwire <digest@papers.example>")
    conn = connect(db)
    sub = subscribe(conn, settings, "reader@example.org", Preferences(), source="cli", confirmed=True).subscription
    digest = Digest(subscription=sub, period="2007-04-02", sections=[Section("trending", "Trending", [get_paper(conn, PID)])])
    _, raw = digest_message(settings, digest)
    msg = email.message_from_bytes(raw, policy=policy.default)
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert PLAIN_TITLE in text
    assert "of the Lorentzian path integral. We cite Ynduráin, use bold claims, 50% of $x^2$" in text
    assert "Schrödinger’s “quantum” <em>cosmology</em> – a $\\JJ$ test" in html
    assert "<em>Lorentzian</em>" in html and "<strong>bold</strong>" in html
    assert "<script>window" not in html and "\\em" not in html
    assert "Schrödinger’s “quantum” cosmology" in str(msg["Subject"])


CHROMIUM = "/usr/bin/chromium"


@pytest.mark.browser
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} not installed")
def test_undefined_macro_shows_source_in_text_colour(db):
    sync_api = pytest.importorskip("playwright.sync_api")
    with live_server(db) as url, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = browser.new_page()
            page.goto(f"{url}/papers/{PID}")
            page.wait_for_selector("html.math-ready")
            abstract = page.locator(".abstract .math-text")
            assert abstract.locator(".katex").count() >= 1  # $x^2$ typeset
            # KaTeX (throwOnError false) draws an undefined macro as its source in errorColor.
            colours = page.evaluate("""() => {
                const spans = [...document.querySelectorAll('.abstract .katex-html .mord')]
                    .filter(e => e.textContent === '\\\\JJ' && !e.querySelector('.mord'));
                return spans.map(e => [getComputedStyle(e).color, getComputedStyle(e.closest('p')).color]);
            }""")
            assert len(colours) == 1, colours
            assert colours[0][0] == colours[0][1] and colours[0][0] != "rgb(204, 0, 0)"
            # A parse error ($a^$) shows its source the same way (site.css + errorColor).
            colour = page.evaluate("""() => {
                const e = document.querySelector('.abstract .katex-error');
                return e ? [getComputedStyle(e).color, getComputedStyle(e.closest('p')).color, e.textContent] : null;
            }""")
            assert colour is not None and colour[0] == colour[1] and colour[2] == "a^"
            assert abstract.locator("em").first.inner_text() == "Lorentzian"
            # the title's $\JJ$ too, and no script from the abstract ran
            assert "\\JJ" in page.locator("h1 .katex").inner_text()
            assert page.evaluate("window.__pwned") is None
        finally:
            browser.close()
