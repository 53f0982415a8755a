"""``run_sync``: the one step cron (or ``paperwire worker``) runs to stay fresh.

1. harvest every set in ``settings.harvest_sets`` over OAI-PMH (incremental, resumable);
2. fetch papers people submitted by id (arXiv API);
3. import today's Hugging Face daily-papers list (upvotes, submitter); skipped when
   ``PAPERWIRE_HF_BASE_URL`` is ``none``;
4. update the search index, embeddings and similar-paper lists for what changed
   (:func:`paperwire.index.build.update_index`, itself incremental).

A failing step is reported and the next one still runs: a flaky HF endpoint must
not stop arXiv papers from becoming searchable. Two syncs never run at once on
one store (a lock file beside SQLite, an advisory lock on PostgreSQL); a second one
reports "busy".
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from typing import Iterator

import httpx

from paperwire.harvest import HarvestError, PoliteFetcher, fetch_submissions, harvest, sync_hf
from paperwire.settings import Settings


class HarvestBusy(RuntimeError):
    """Another harvest or sync holds the lock for this database."""


@contextlib.contextmanager
def harvest_lock(db_path: str | os.PathLike) -> Iterator[None]:
    """Exclusive, non-blocking, store-wide lock for harvests and syncs: a file lock beside a
    SQLite database, an advisory lock on PostgreSQL (so one harvest runs across all nodes);
    released by the system on any exit, SIGKILL too."""
    from paperwire.store.dialect import db_label
    from paperwire.store.locks import LockBusy, exclusive

    try:
        with exclusive(db_path, "harvest", busy=f"another harvest is running on {db_label(db_path)}"):
            yield
    except LockBusy as exc:
        raise HarvestBusy(str(exc)) from None


def harvest_sets(settings: Settings) -> list[str | None]:
    """``settings.harvest_sets`` ("cs", "cs math", "cs,physics:hep-th"); empty = the whole repository."""
    sets = [s for s in re.split(r"[\s,]+", settings.harvest_sets or "") if s]
    return sets or [None]


def run_sync(conn, settings: Settings, client: httpx.Client | None = None, *, hf: bool = True,
             index: bool = True, fetcher: PoliteFetcher | None = None, lock: bool = True) -> dict:
    """Harvest, drain submissions, sync HF, then index what is new. Returns a report dict.

    ``report["ok"]`` is False when any step failed (its message is in ``errors``).
    """
    t0 = time.perf_counter()
    out: dict = {"ok": True, "harvest": [], "submissions": None, "hf": None, "index": None,
                 "errors": [], "changed": 0}
    own = fetcher is None
    fetcher = fetcher or PoliteFetcher(settings, client)
    guard = harvest_lock(settings.db_path) if lock else contextlib.nullcontext()
    try:
        with guard:
            _steps(conn, settings, fetcher, out, hf=hf, index=index)
    except HarvestBusy as exc:
        out["ok"] = False
        out["errors"].append(str(exc))
    finally:
        if own:
            fetcher.close()
    out["seconds"] = round(time.perf_counter() - t0, 3)
    return out


def _steps(conn, settings: Settings, fetcher: PoliteFetcher, out: dict, *, hf: bool, index: bool) -> None:
    changed = set()
    for set_spec in harvest_sets(settings):
        t = time.perf_counter()
        try:
            rep = harvest(conn, settings, set_spec=set_spec, fetcher=fetcher)
        except (HarvestError, ValueError) as exc:
            out["ok"] = False
            out["errors"].append(f"harvest {set_spec or '(all)'}: {exc}")
            continue
        changed.update(rep.changed_ids)
        d = rep.to_dict()
        d["errors"] = d["errors"][:20]
        d["seconds"] = round(time.perf_counter() - t, 3)
        out["harvest"].append(d)

    try:
        subs = fetch_submissions(conn, settings, fetcher=fetcher)
    except HarvestError as exc:  # pragma: no cover - fetch_submissions reports its own errors
        subs = {"errors": [str(exc)], "changed_ids": []}
    changed.update(subs.pop("changed_ids", []))
    if subs.get("errors"):
        out["ok"] = False
        out["errors"].extend(f"submissions: {e}" for e in subs["errors"])
    out["submissions"] = subs

    if hf and (settings.hf_base_url or "").strip().lower() not in ("", "none", "off"):
        try:
            rep = sync_hf(conn, settings, fetcher=fetcher)
            changed.update(rep.pop("changed_ids", []))
            rep["errors"] = rep["errors"][:20]
            out["hf"] = rep
        except (HarvestError, ValueError) as exc:
            out["ok"] = False
            out["errors"].append(f"hf: {exc}")
            out["hf"] = {"error": str(exc)}

    out["changed"] = len(changed)
    if index:
        try:
            out["index"] = update_search_index(conn, settings)
        except Exception as exc:  # noqa: BLE001 - report, keep the harvested data
            out["ok"] = False
            out["errors"].append(f"index: {type(exc).__name__}: {exc}")


def update_search_index(conn, settings: Settings) -> dict | str:
    """Run the search area's incremental ``update_index``; a string says why it was skipped."""
    try:
        from paperwire.index.build import update_index
    except ImportError as exc:
        return f"index skipped: paperwire.index.build is not available ({exc})"
    if (settings.embedder or "").lower() == "none":
        return update_index(conn, semantic=False)
    embedder = settings.embedder or "auto"
    try:
        from paperwire.index.embeddings import get_embedder

        embedder = get_embedder(embedder, settings.device)
    except Exception:  # noqa: BLE001 - unavailable backends: update_index notes why and goes lexical
        pass
    return update_index(conn, embedder=embedder)
