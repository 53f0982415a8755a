"""One read of the store's state rows per request (store/statememo.py), on both engines:
inside a pin the revisions, search state and model sequence come from the pinned read,
a write transaction on the pinned connection drops the pin, and other connections are
never affected."""

from __future__ import annotations

import threading

from paperwire.store import accounts, embeddings, papers, search, statememo
from paperwire.store.db import connect, transaction


def _bump_elsewhere(target) -> None:
    """Commit a new store revision, web revision, state value and model seq through a
    second connection, as another node would."""
    other = connect(target)
    with transaction(other):
        papers.next_rev(other)
        other.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='web_rev'")
        search.set_state(other, "model", "fake-2")
        other.execute("UPDATE embedding_models SET seq = seq + 5 WHERE model='fake-1'")
    other.close()


def _reads(conn) -> tuple:
    return (papers.current_rev(conn), search.store_rev(conn), accounts.cache_revs(conn),
            search.get_state(conn, "model"), search.get_state(conn, "never-set", "dflt"),
            embeddings.model_seq(conn, "fake-1"), embeddings.model_seq(conn, "no-such-model"))


def _setup(conn) -> None:
    with transaction(conn):
        search.set_state(conn, "model", "fake-1")
        conn.execute("INSERT INTO embedding_models (model, dim, seq) VALUES ('fake-1', 4, 3)")


def test_a_pin_answers_from_one_read_until_it_ends(store_target):
    conn = connect(store_target)
    _setup(conn)
    before = _reads(conn)
    assert before[3] == "fake-1" and before[4] == "dflt" and before[5] == 3 and before[6] == 0
    with statememo.pinned(conn):
        assert _reads(conn) == before
        _bump_elsewhere(store_target)
        # Committed meanwhile, elsewhere: this request keeps the revision it started with.
        assert _reads(conn) == before
        with statememo.pinned(conn):  # nested: still the outer request's revision
            assert _reads(conn) == before
    after = _reads(conn)
    assert after[0] == before[0] + 1 and after[2] == (before[2][0] + 1, before[2][1] + 1)
    assert after[3] == "fake-2" and after[5] == 8
    conn.close()


def test_a_write_on_the_pinned_connection_reads_its_own_write(store_target):
    conn = connect(store_target)
    _setup(conn)
    with statememo.pinned(conn):
        with transaction(conn):
            search.set_state(conn, "model", "fake-3")
            rev = papers.next_rev(conn)
        assert search.get_state(conn, "model") == "fake-3"
        assert papers.current_rev(conn) == rev
    conn.close()


def test_the_pin_is_per_connection_and_per_thread(store_target):
    conn, other = connect(store_target), connect(store_target)
    _setup(conn)
    with statememo.pinned(conn):
        _bump_elsewhere(store_target)
        pinned_rev = papers.current_rev(conn)
        assert papers.current_rev(other) == pinned_rev + 1  # another connection reads fresh
        seen = []
        t = threading.Thread(target=lambda: seen.append(statememo.meta_value(conn, "rev")))
        t.start()
        t.join()
        assert seen == [statememo.MISSING]  # another thread on the same connection reads fresh too
    assert statememo.meta_value(conn, "rev") is statememo.MISSING
    conn.close()
    other.close()
