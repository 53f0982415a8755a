"""How a worker runs searches under load: one at a time, in arrival order, while cache
hits keep being answered; and the search engine is warmed when a worker starts."""

from __future__ import annotations

import threading
import time
import urllib.parse
import urllib.request

from web_support import demo_db, live_server, settings_for


def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=30) as r:
        r.read()
        return r.status


def test_searches_run_one_at_a_time_while_cache_hits_are_served(tmp_path, monkeypatch):
    from paperwire.web import searching

    db = demo_db(tmp_path)
    active, peak, finished = [0], [0], []
    lock = threading.Lock()
    real = searching.run_search

    def slow_search(*args, **kwargs):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        try:
            time.sleep(0.25)
            return real(*args, **kwargs)
        finally:
            with lock:
                active[0] -= 1
                finished.append(time.monotonic())

    monkeypatch.setattr(searching, "run_search", slow_search)
    with live_server(db) as base:
        assert _get(base + "/") == 200  # now cached
        # The first search loads the engine (tokenizer, index, vectors): CPU work that holds
        # the GIL on a slow machine, and is not what this test measures.
        assert _get(base + "/api/papers/search?q=warm") == 200
        urls = [base + "/api/papers/search?q=" + urllib.parse.quote(q)
                for q in ("neutrino mass", "quantum", "black holes", "graph")]
        urls.append(base + "/search?q=dark+matter")          # the HTML page shares the queue
        urls.append(base + "/feeds/search.atom?q=galaxies")  # and so does the feed
        codes: list[int] = []
        threads = [threading.Thread(target=lambda u=u: codes.append(_get(u))) for u in urls]
        for t in threads:
            t.start()
        time.sleep(0.3)  # searches are queued now (6 x 0.25 s, one at a time)
        t0 = time.monotonic()
        assert _get(base + "/") == 200
        home_done = time.monotonic()
        for t in threads:
            t.join()
    assert sorted(codes) == [200] * len(urls)
    assert peak[0] == 1, "searches ran concurrently in one worker"
    assert home_done - t0 < 0.25 and home_done < max(finished), "a cache hit waited for the searches"


def test_warm_search_loads_the_engine_before_the_first_request(tmp_path):
    from paperwire.index.build import update_index
    from paperwire.index.embeddings import get_embedder
    from paperwire.index.semantic import drop_views
    from paperwire.store.db import connect
    from paperwire.web.server import warm_search

    db = demo_db(tmp_path)
    conn = connect(db)
    update_index(conn, embedder=get_embedder("fake:48"))  # the index now names model fake-48
    conn.close()
    drop_views()
    emb = get_embedder("fake:48")  # the process-wide instance search will use
    calls = emb.calls
    warm_search(settings_for(db, embedder="auto"))
    for t in threading.enumerate():
        if t.name == "paperwire-warm-search":
            t.join(30)
    assert emb.calls == calls + 1  # the throwaway query was embedded: model loaded, vector index built
    warm_search(settings_for(db, embedder="none"))  # sites without semantic search skip it
    assert not any(t.name == "paperwire-warm-search" for t in threading.enumerate())
    drop_views()
