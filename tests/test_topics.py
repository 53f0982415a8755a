"""The topic map and trends: layout stored, new papers placed near their neighbours without a
refit, labels are each cluster's distinctive terms, trends and "rising", empty states, the API
shape, the CLI and the digest's PNG. Real SQLite files, real UMAP (the ``map`` extra)."""

from __future__ import annotations

import io
import random
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("umap")
pytest.importorskip("sklearn")

from paperwire.index.build import embed_missing  # noqa: E402
from paperwire.index.embeddings import FakeEmbedder  # noqa: E402
from paperwire.ingest import import_records  # noqa: E402
from paperwire.store import topics as sql  # noqa: E402
from paperwire.topics import charts, labels, map as topic_map, trends  # noqa: E402

from topics_support import END, FILLER, TOPICS, _paper, make_corpus  # noqa: E402


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One built map shared by the tests that only read it (UMAP fits cost seconds)."""
    path = tmp_path_factory.mktemp("topics") / "map.db"
    conn = make_corpus(path, per_topic=50, burst=12)
    embed_missing(conn, FakeEmbedder(64))
    summary = topic_map.build_map(conn, seed=0)
    return path, conn, summary


def _topic_of(conn, rowid: int) -> str:
    return conn.execute("SELECT paper_id FROM papers WHERE id=?", (rowid,)).fetchone()[0].split("-")[0]


def test_layout_is_stored_with_two_cluster_levels(built):
    path, conn, summary = built
    n = conn.execute("SELECT COUNT(*) FROM papers").fetchone()[0]
    assert summary["points"] == n == sql.point_count(conn) == 162
    rows = conn.execute("SELECT x, y, coarse, fine, fitted FROM topic_map_points").fetchall()
    xy = np.array([(r[0], r[1]) for r in rows])
    assert xy.min() >= 0 and xy.max() <= 1 and xy.std(axis=0).min() > 0.05  # spread, not collapsed
    coarse = {c["id"]: c for c in sql.clusters(conn, "coarse")}
    fine = {c["id"]: c for c in sql.clusters(conn, "fine")}
    assert 3 <= len(coarse) < len(fine)
    # every fine cluster nests in one coarse cluster, and its points say so
    for r in rows:
        assert fine[r[3]]["parent"] == r[2]
    assert sum(c["size"] for c in coarse.values()) == n == sum(c["size"] for c in fine.values())
    meta = sql.map_meta(conn)
    assert meta["model"] == "fake-64" and meta["built_at"]
    assert Path(str(path) + ".topicmap.npz").exists()


def test_topics_separate_on_the_map(built):
    """Papers of one topic sit together: each point's 5 nearest map neighbours share its topic."""
    _, conn, _ = built
    rows = conn.execute("SELECT paper, x, y FROM topic_map_points").fetchall()
    topics = [_topic_of(conn, r[0]) for r in rows]
    xy = np.array([(r[1], r[2]) for r in rows])
    d = ((xy[:, None] - xy[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    nn = np.argsort(d, axis=1)[:, :5]
    agree = np.mean([[topics[j] == topics[i] for j in nn[i]] for i in range(len(rows))])
    assert agree > 0.9, agree


def test_labels_are_distinctive_terms(built):
    _, conn, _ = built
    for c in sql.clusters(conn, "coarse"):
        members = [r[0] for r in conn.execute("SELECT paper FROM topic_map_points WHERE coarse=?", (c["id"],))]
        major = max(TOPICS, key=lambda t: sum(_topic_of(conn, m) == t for m in members))
        words = set(" ".join(c["terms"][:3]).split())
        assert words & set(TOPICS[major]), (c["label"], major)
        assert not words & set(FILLER), c["label"]  # words every topic uses never label one
        assert c["label"] == " · ".join(c["terms"][:3])
    # The fine level (shown zoomed in) is labelled the same way, from its own members.
    fine = sql.clusters(conn, "fine")
    assert len(fine) > len(sql.clusters(conn, "coarse"))
    own = 0
    for c in fine:
        members = [r[0] for r in conn.execute("SELECT paper FROM topic_map_points WHERE fine=?", (c["id"],))]
        major = max(TOPICS, key=lambda t: sum(_topic_of(conn, m) == t for m in members))
        words = set(" ".join(c["terms"][:3]).split())
        assert not words & set(FILLER), c["label"]
        own += bool(words & set(TOPICS[major]))
    assert own >= 0.9 * len(fine), (own, len(fine))


def test_c_tf_idf_prefers_what_a_class_owns():
    texts = ["apple banana shared", "apple banana shared", "rocket orbit shared", "rocket orbit shared"]
    terms = labels.c_tf_idf(texts, [0, 0, 1, 1], 2, top=2)
    assert set(terms[0][0].split()) <= {"apple", "banana"} and set(terms[1][0].split()) <= {"rocket", "orbit"}
    assert "shared" not in terms[0] + terms[1]  # as frequent as "apple", but in every class
    # "model" and "models" are one term when labelling
    terms = labels.c_tf_idf(["models model graph graphs", "models model graph"] * 3 + ["ocean wave"] * 6,
                            [0] * 6 + [1] * 6, 2, top=3)
    assert len({labels._key(t) for t in terms[0]}) == len(terms[0])


def test_new_papers_are_placed_near_their_neighbours_without_refit(tmp_path):
    conn = make_corpus(tmp_path / "place.db", per_topic=40)
    emb = FakeEmbedder(64)
    embed_missing(conn, emb)
    topic_map.build_map(conn, seed=1, max_fit=100)  # 120 papers: 20 placed from neighbours already
    built_at = sql.get_map_value(conn, "built_at")
    fitted_before = conn.execute("SELECT paper, x, y FROM topic_map_points WHERE fitted=1").fetchall()
    assert len(fitted_before) == 100 and sql.point_count(conn) == 120
    rng = random.Random(99)
    import_records(conn, [_paper("bio", 500 + i, rng, END) for i in range(6)])
    embed_missing(conn, emb)
    assert topic_map.map_status(conn)["unplaced"] == 6
    Path(str(tmp_path / "place.db") + ".topicmap.npz").unlink()  # the cache is rebuilt from the store
    out = topic_map.place_new(conn)
    assert out["placed"] == 6
    assert sql.get_map_value(conn, "built_at") == built_at  # no refit
    assert conn.execute("SELECT paper, x, y FROM topic_map_points WHERE fitted=1").fetchall() == fitted_before
    rows = conn.execute("SELECT paper, x, y, fitted FROM topic_map_points").fetchall()
    xy = {r[0]: (r[1], r[2]) for r in rows}
    new_ids = {f"bio-{500 + i}" for i in range(6)}
    new = [r[0] for r in rows if conn.execute("SELECT paper_id FROM papers WHERE id=?", (r[0],)).fetchone()[0]
           in new_ids]
    assert all(r[3] == 0 for r in rows if r[0] in new)
    assert len(new) == 6
    old = [r[0] for r in rows if r[0] not in new]
    for p in new:
        d = sorted(((xy[p][0] - xy[q][0]) ** 2 + (xy[p][1] - xy[q][1]) ** 2, _topic_of(conn, q)) for q in old)
        assert sum(t == "bio" for _, t in d[:5]) >= 4, d[:5]
    assert sum(c["size"] for c in sql.clusters(conn, "coarse")) == 126
    assert topic_map.place_new(conn)["placed"] == 0  # nothing left: idempotent


def _sizes_recounted(conn) -> dict:
    out = {}
    for level in ("coarse", "fine"):
        out.update({(level, c): n for c, n in conn.execute(
            f"SELECT {level}, COUNT(*) FROM topic_map_points GROUP BY {level}")})
    return out


def test_placement_follows_what_is_new_and_keeps_sizes_exact(store_target):
    """On both engines: the mark's candidate query and the size deltas are SQL of their own."""
    conn = make_corpus(store_target, per_topic=30)
    emb = FakeEmbedder(64)
    embed_missing(conn, emb)
    rng = random.Random(5)
    # Imported before the build but embedded after it: older than the store rev of the mark,
    # newer by the model's vector seq, so place_new must still find them.
    import_records(conn, [_paper("astro", 700 + i, rng, END) for i in range(3)])
    topic_map.build_map(conn, seed=1, max_fit=60)
    mark = sql.get_map_value(conn, "placed_mark")
    assert sql.point_count(conn) == 90 and mark[0] >= 1
    embed_missing(conn, emb)
    import_records(conn, [_paper("nlp", 800 + i, rng, END) for i in range(4)])  # new rev, no vector yet
    assert topic_map.place_new(conn)["placed"] == 3
    embed_missing(conn, emb)
    assert sql.unplaced_papers(conn, sql.get_map_value(conn, "model"),
                               since=sql.get_map_value(conn, "placed_mark")) == \
        sql.unplaced_papers(conn, sql.get_map_value(conn, "model"))  # the same 4, found either way
    assert topic_map.place_new(conn)["placed"] == 4
    assert sql.point_count(conn) == 97 and topic_map.map_status(conn)["unplaced"] == 0
    stored = {(c["level"], c["id"]): c["size"] for lv in ("coarse", "fine") for c in sql.clusters(conn, lv)}
    assert {k: v for k, v in stored.items() if v} == _sizes_recounted(conn)
    # Placing papers again (a moved point) moves the counts, never double-counts them.
    again = conn.execute("SELECT paper, x, y FROM topic_map_points WHERE fitted=0 LIMIT 2").fetchall()
    sql.add_points(conn, [(p, x, y, 0, 0) for p, x, y in again])
    stored = {(c["level"], c["id"]): c["size"] for lv in ("coarse", "fine") for c in sql.clusters(conn, lv)}
    assert {k: v for k, v in stored.items() if v} == _sizes_recounted(conn)


def test_place_is_a_weighted_neighbour_mean():
    fit = np.eye(3, dtype=np.float32)
    xy = np.array([[0.1, 0.1], [0.9, 0.1], [0.5, 0.9]])
    out = topic_map.place(fit, xy, np.array([[1, 0, 0], [0.6, 0.8, 0]], np.float32), k=2)
    assert np.allclose(out[0], [0.1, 0.1])
    assert out[1][0] > 0.5  # closer to the second fitted point


def test_too_small_or_unembedded_store_gives_empty_states(tmp_path):
    conn = make_corpus(tmp_path / "small.db", per_topic=5)
    with pytest.raises(topic_map.EmptyMap, match="no paper has an embedding"):
        topic_map.build_map(conn)
    assert "No paper has an embedding" in topic_map.empty_reason(conn)
    embed_missing(conn, FakeEmbedder(64))
    with pytest.raises(topic_map.EmptyMap, match="only 15 papers"):
        topic_map.build_map(conn)
    assert "Only 15 papers" in topic_map.map_status(conn)["empty_reason"]
    assert topic_map.place_new(conn)["placed"] == 0
    assert trends.weekly(conn).empty


def test_rising_against_previous_eight_weeks():
    s = [trends.ClusterSeries(0, "steady", 100, [10] * 9 + [11], [0] * 10),
         trends.ClusterSeries(1, "jump", 30, [2] * 9 + [9], [0] * 9 + [5]),
         trends.ClusterSeries(2, "new", 3, [0] * 9 + [3], [0] * 10),
         trends.ClusterSeries(3, "falling", 50, [8] * 9 + [1], [0] * 10)]
    out = trends.rising(s)
    assert [r["label"] for r in out] == ["jump", "new", "steady"]
    assert out[0]["this_week"] == 9 and out[0]["baseline"] == 2 and trends.growth_text(out[0]) == "+350%"
    assert trends.growth_text(out[1]) == "new"


def test_weekly_trends_find_the_burst(built):
    _, conn, _ = built
    tr = trends.weekly(conn)
    assert tr.weeks[-1].isoformat() == "2026-11-16" and len(tr.weeks) == 12
    total = sum(sum(c.papers) for c in tr.clusters)
    assert total == 162  # every paper is in the 12 weeks
    assert tr.rising, "the nlp burst this week should rise"
    top = tr.rising[0]
    members = [r[0] for r in conn.execute("SELECT paper FROM topic_map_points WHERE coarse=?", (top["id"],))]
    assert max(TOPICS, key=lambda t: sum(_topic_of(conn, m) == t for m in members)) == "nlp"
    svg = charts.line_chart(tr, title='Papers <"per"> week')
    assert svg.startswith("<svg") and svg.count("<polyline") == min(8, len(tr.clusters))
    assert "&lt;&quot;per&quot;&gt;" in svg and '<"per">' not in svg  # labels are escaped


def test_upvotes_land_in_their_topic_and_week(built):
    """Upvotes per topic per week: a paper's upstream and local votes count in its own coarse
    cluster, in the week of its feed date, and nowhere else."""
    _, conn, _ = built
    rowid, coarse = conn.execute("SELECT paper, coarse FROM topic_map_points ORDER BY paper LIMIT 1").fetchone()
    feed_date, up, local = conn.execute("SELECT feed_date, upvotes, local_upvotes FROM papers WHERE id=?",
                                        (rowid,)).fetchone()
    before = trends.weekly(conn)
    week = before.weeks.index(trends.monday(date.fromisoformat(feed_date[:10])))
    try:
        conn.execute("UPDATE papers SET upvotes=upvotes+40, local_upvotes=local_upvotes+2 WHERE id=?", (rowid,))
        conn.commit()
        after = trends.weekly(conn)
    finally:
        conn.execute("UPDATE papers SET upvotes=?, local_upvotes=? WHERE id=?", (up, local, rowid))
        conn.commit()
    b = {c.id: c.upvotes for c in before.clusters}
    a = {c.id: c.upvotes for c in after.clusters}
    diff = {(cid, i): a[cid][i] - b[cid][i] for cid in a for i in range(len(a[cid])) if a[cid][i] != b[cid][i]}
    assert diff == {(coarse, week): 42}
    svg = charts.line_chart(after, series="upvotes", title="Upvotes per week")
    assert svg.count("<polyline") == min(8, len(after.clusters))


def test_rising_png_is_a_real_image(built):
    from PIL import Image

    _, conn, _ = built
    png = charts.rising_png(trends.weekly(conn))
    img = Image.open(io.BytesIO(png))
    assert img.format == "PNG" and img.size[0] == 600
    assert len(img.convert("RGB").getcolors(maxcolors=1 << 20)) > 10  # bars and text, not a blank
    assert charts.rising_png(trends.Trends([], [], [])) is None


def test_cli_map_build_and_status(tmp_path):
    from click.testing import CliRunner

    from paperwire.cli import cli

    db = tmp_path / "cli.db"
    conn = make_corpus(db, per_topic=20)
    runner = CliRunner()
    r = runner.invoke(cli, ["--db", str(db), "map", "build"])
    assert r.exit_code == 1 and "no paper has an embedding" in r.output
    embed_missing(conn, FakeEmbedder(64))
    conn.close()
    r = runner.invoke(cli, ["--db", str(db), "map", "build", "--json"])
    assert r.exit_code == 0, r.output
    assert '"points": 60' in r.output
    r = runner.invoke(cli, ["--db", str(db), "map", "status"])
    assert r.exit_code == 0 and '"built": true' in r.output and '"unplaced": 0' in r.output


def test_weekly_digest_embeds_the_rising_chart(built, tmp_path):
    """A weekly digest gets the rising-topics PNG as a paper-less last section, embedded in the
    mail (multipart/related, cid:) so it shows where remote images are blocked; the text part
    links it (week pinned). The at-most-once ledger (paper_rowids) is unchanged by it; daily
    digests never get it."""
    import email
    from email import policy

    from PIL import Image

    from digest_support import activate, make_settings
    from paperwire.digest.compose import compose_digest
    from paperwire.digest.render import digest_message

    path, conn, _ = built
    settings = make_settings(path, 1)
    sub = activate(conn, settings, "w@example.org", frequency="weekly", top_n=5)
    d = compose_digest(conn, settings, sub, period="weekly:2026-W47", now=END)
    assert d.sections and d.sections[-1].key == "rising" and d.sections[-1].papers == []
    assert len(d.paper_rowids) == sum(len(s.papers) for s in d.sections[:-1]) > 0
    _, raw = digest_message(settings, d, now=END)
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert not msg.defects and msg.get_content_type() == "multipart/alternative"
    html_part, plain_part = msg.get_body(("html",)), msg.get_body(("plain",))
    html, plain = html_part.get_content(), plain_part.get_content()
    assert "Rising topics, week of Nov 16, 2026" in html and "Rising topics, week of Nov 16, 2026" in plain
    assert "https://papers.example/trends/rising.png?week=2026-11-16" in plain
    related = [p for p in msg.walk() if p.get_content_type() == "multipart/related"]
    assert len(related) == 1 and related[0].get_param("type") == "text/html"
    images = [p for p in msg.walk() if p.get_content_type() == "image/png"]
    assert len(images) == 1
    cid = images[0]["Content-ID"].strip("<>")
    assert f'src="cid:{cid}"' in html and "trends/rising.png" not in html
    png = images[0].get_content()
    assert png == d.sections[-1].image
    img = Image.open(io.BytesIO(png))
    assert img.format == "PNG" and img.size[0] == 600
    assert len(raw) < 64_000, len(raw)  # stored once per recipient in the ledger: keep it small
    # A saved HTML copy (digest preview --output x.html) carries the image as a data: URI.
    from paperwire.digest.render import html_with_inline_images

    saved = html_with_inline_images(msg)
    assert "cid:" not in saved and "data:image/png;base64," in saved
    # Without the image (an older composed section), the HTML links the chart instead.
    d.sections[-1].image = None
    _, raw2 = digest_message(settings, d, now=END)
    msg2 = email.message_from_bytes(raw2, policy=policy.default)
    assert "https://papers.example/trends/rising.png?week=2026-11-16" in msg2.get_body(("html",)).get_content()
    assert not [p for p in msg2.walk() if p.get_content_maintype() == "image"]
    daily = activate(conn, settings, "d@example.org", frequency="daily", top_n=5)
    dd = compose_digest(conn, settings, daily, period="daily:2026-11-18", now=END)
    assert all(s.key != "rising" for s in dd.sections)


def test_weekly_digest_chart_arrives_through_smtp(built):
    """Composed, stored in the ledger and delivered to a real SMTP server, the weekly mail still
    holds the chart's PNG, byte for byte, and the HTML that references it."""
    from digest_support import SmtpServer, activate, make_settings
    from paperwire.digest import send as digest_send
    from paperwire.topics.trends import digest_rising

    path, conn, _ = built
    with SmtpServer() as smtp:
        settings = make_settings(path, smtp.port)
        activate(conn, settings, "smtp-weekly@example.org", frequency="weekly", top_n=3)
        report = digest_send.run_digests(conn, settings, "weekly", now=END)
        assert report.ok
        smtp.wait_for(1)
        got = smtp.handler.to("smtp-weekly@example.org")
    assert len(got) == 1
    msg = got[0].msg
    images = [p for p in msg.walk() if p.get_content_type() == "image/png"]
    assert len(images) == 1 and images[0].get_content() == digest_rising(conn)[2]
    assert f'cid:{images[0]["Content-ID"].strip("<>")}' in msg.get_body(("html",)).get_content()


def test_worker_refits_weekly_and_places_in_between(tmp_path):
    from paperwire.topics import schedule

    conn = make_corpus(tmp_path / "worker.db", per_topic=20)
    monday = datetime(2026, 11, 23, 8, tzinfo=timezone.utc)
    assert schedule.tick(conn, monday) == []  # nothing embedded yet: quiet, nothing recorded
    emb = FakeEmbedder(64)
    embed_missing(conn, emb)
    lines = schedule.tick(conn, monday)
    assert len(lines) == 1 and lines[0].startswith("map-build 2026-W48: 60 points")
    assert schedule.tick(conn, monday + timedelta(hours=1)) == []  # built this week, nothing new
    import_records(conn, [_paper("astro", 900 + i, random.Random(i), END) for i in range(3)])
    embed_missing(conn, emb)
    assert schedule.tick(conn, monday + timedelta(hours=2)) == ["map: placed 3 new papers"]
    assert sql.point_count(conn) == 63 and sql.fitted_count(conn) == 60


def test_hnsw_placement_agrees_with_exact():
    """Placing most of a big corpus goes through usearch's HNSW: nearly the exact path's positions."""
    pytest.importorskip("usearch")
    rng = np.random.default_rng(3)
    centres = rng.standard_normal((5, 32))
    fit = centres[rng.integers(0, 5, 400)] + 0.3 * rng.standard_normal((400, 32))
    fit = (fit / np.linalg.norm(fit, axis=1, keepdims=True)).astype(np.float32)
    xy = rng.random((400, 2))
    q = fit[:50] + 0.05 * rng.standard_normal((50, 32)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    a = topic_map.place(fit, xy, q, exact=True)
    b = topic_map.place(fit, xy, q, exact=False)
    # approximate: a rare missed neighbour moves a paper, most land where the exact path puts them
    assert np.mean(np.abs(a - b).max(axis=1) < 0.01) >= 0.9
