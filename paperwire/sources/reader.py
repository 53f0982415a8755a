"""Parse in a second process while the first one writes.

Parsing (JSON/CSV decoding, field clean-up) and everything the writer derives
from a record alone (hashes, JSON columns: :func:`paperwire.ingest.prepare_record`)
need no database, so for large inputs a child process does them and hands
records over in pickled batches through a pipe.
On 2 cores the two halves overlap; memory stays flat because the pipe
blocks the parser while the writer is behind.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import operator
import os
from pathlib import Path
from typing import Iterator

from paperwire.model import PaperRecord

BATCH = 1000

# A record crosses the pipe as the tuple of its fields' values, not as a pickled
# dataclass (whose state is a 24-key dict per record): a third less time to load on the
# writer's side, which is the busier one. Every attribute of a record is a field.
_FIELDS = tuple(f.name for f in dataclasses.fields(PaperRecord))
_values = operator.attrgetter(*_FIELDS)


def _rebuild(values: tuple) -> PaperRecord:
    """The record whose fields hold ``values`` (checked and prepared in the parser already)."""
    rec = object.__new__(PaperRecord)
    rec.__dict__.update(zip(_FIELDS, values))
    return rec


# Below this much input a second process costs more than it saves.
PARALLEL_MIN_BYTES = 16 * 2**20

_DONE = "__done__"


def input_size(plan: list[tuple[Path, str]]) -> int:
    total = 0
    for path, _ in plan:
        path = Path(path)
        if path.is_file():
            total += path.stat().st_size
        elif path.is_dir():
            total += sum(f.stat().st_size for f in path.iterdir() if f.is_file())
    return total


def _produce(plan, sender, options=None, starts=None) -> None:
    from paperwire.ingest import fewer_collections, prepare_record
    from paperwire.sources import file_records

    try:
        batch = []
        with fewer_collections():  # parsing allocates as much as writing (see there)
            for i, (path, name) in enumerate(plan):
                for item in file_records(i, Path(path), name, options or {}, starts[i] if starts else 1):
                    if isinstance(item, PaperRecord):
                        prepare_record(item)  # hashes and JSON here, off the writer's plate
                        item = _values(item)
                    batch.append(item)
                    if len(batch) >= BATCH:
                        sender.send(batch)  # blocks while the parent is busy: backpressure
                        batch = []
        if batch:
            sender.send(batch)
        sender.send(_DONE)
    except (BrokenPipeError, ConnectionResetError):
        os._exit(0)  # the parent is gone (killed): nothing left to do
    except BaseException as exc:  # hand the failure to the parent, which re-raises it
        try:
            sender.send(exc)
        except Exception:
            try:
                sender.send(RuntimeError(f"{type(exc).__name__}: {exc}"))
            except Exception:
                os._exit(1)
    finally:
        sender.close()


def parallel_records(plan: list[tuple[Path, str]], options: dict | None = None,
                     starts: list[int | None] | None = None) -> Iterator:
    """Yield the records of ``plan`` (path, format) parsed in a child process;
    ``options`` maps a format name to its parser's keyword options, ``starts`` gives
    each file's first line (see :func:`paperwire.sources.file_records`)."""
    ctx = mp.get_context("spawn")  # no inherited SQLite handles or threads
    # One-way pipe; the child holds only the write end, so if this process dies the
    # child's next send fails and it exits rather than lingering.
    receiver, sender = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_produce, args=([(str(p), n) for p, n in plan], sender, options, starts), daemon=True)
    proc.start()
    sender.close()
    try:
        while True:
            try:
                item = receiver.recv()
            except EOFError:
                raise RuntimeError("the parser process died without a word") from None
            if isinstance(item, str) and item == _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            for one in item:
                yield _rebuild(one) if one.__class__ is tuple else one
    finally:
        receiver.close()
        if proc.is_alive():
            proc.terminate()
        proc.join(timeout=5)
