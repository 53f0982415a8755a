"""More search-quality levers on a BEIR set (tune on train, report test), scored offline.

    python bench/search_levers2.py ../shared/bench/scifact --scratch /tmp/h5/sf.db [--set 1..9]
    python bench/search_levers2.py ../shared/bench/scifact --scratch /tmp/h5/sf.db --cpu

The scratch database is the one ``paperwire eval`` / bench/search_levers.py built (papers,
MiniLM paper vectors, and the sentence vectors of search_levers.py under ``<model>:sent``; run
``python bench/search_levers.py BEIR --scratch DB --embed-only`` first):
nothing is re-embedded but the queries (cached in ``--cache``) and, once, the titles
(``<model>:title`` in the scratch database's embedding cache).

Lexical variants are real tantivy indexes built in a temporary folder (5k papers: seconds):
  * ``ship``: today's schema (text = title + abstract, plus a title field boosted 0.2);
  * ``rep<w>``: the title repeated ``w`` times inside the one text field (BM25F-style: the
    title's term frequencies weigh ``w`` times, under one saturation and one length norm);
  * ``rep<w>b<t>``: the same plus the title field boosted ``t``.
Dense variants: the paper vector (title + abstract), a title-only vector (max / blend), and
passage (sentence) vectors, all of them or only some (first / last sentences). Fusion
variants: today's linear fusion (BM25 / max, cosine min-max, alpha), z-score fusion, RRF,
deeper candidate pools, neighbour smoothing; paper vectors embedded at 512 tokens (``--set 6``).
Every setting is chosen on train; test is printed beside it (bench/levers2_score.py). The
candidate data (cosines, BM25 lists) is pickled in ``--cache`` so reruns only score.
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import re
import tempfile
import time
from pathlib import Path

import numpy as np

from paperwire.sources.beir import load_qrels, load_queries

_SENT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[])")


def passages(title: str, abstract: str, max_chars: int = 400) -> list[str]:
    """As bench/search_levers.py (same texts, so the same cached vectors)."""
    sents, cur = [], ""
    for s in _SENT.split(abstract or ""):
        s = s.strip()
        if s:
            cur = f"{cur} {s}".strip()
            if len(cur) >= 60:
                sents.append(cur)
                cur = ""
    if cur:
        sents.append(cur)
    sents = [s for s in dict.fromkeys(sents) if s]
    return [f"{title}. {s[:max_chars]}" for s in sents] or [title or ""]


def windows(title: str, abstract: str, size: int = 2) -> list[str]:
    """Title-prefixed runs of ``size`` consecutive sentences (not overlapping): fewer, longer
    passages than :func:`passages`, the same sentence units."""
    sents = [p[len(f"{title}. "):] for p in passages(title, abstract)]
    runs = [" ".join(sents[i : i + size]) for i in range(0, len(sents), size)]
    return [f"{title}. {r}" for r in runs if r] or [title or ""]


def embed_windows(scratch: Path, size: int = 2) -> list[np.ndarray]:
    """Per paper (rowid order): its window vectors, cached as ``<model>:win<size>``."""
    from paperwire.index.embeddings import get_embedder
    from paperwire.store import embeddings as es
    from paperwire.store.db import connect

    conn = connect(scratch)
    emb = get_embedder("auto")
    model = f"{emb.name}:win{size}"
    per = [windows(t, a, size) for _, t, a in conn.execute("SELECT id, title, abstract FROM papers ORDER BY id")]
    allw = {_h(w): w for ws in per for w in ws}
    have = es.get_embeddings(conn, model, list(allw))
    todo = [(k, w) for k, w in allw.items() if k not in have]
    t0 = time.process_time()
    for i in range(0, len(todo), 256):
        part = todo[i : i + 256]
        vecs = emb.encode([w for _, w in part])
        es.put_embeddings(conn, model, [k for k, _ in part], vecs)
        have.update(zip([k for k, _ in part], vecs))
        print(f"  windows embedded {i + len(part)}/{len(todo)}: {time.process_time() - t0:.0f} s CPU", flush=True)
    print(f"{len(allw)} windows of {size} sentences ({len(allw) / len(per):.2f} a paper)", flush=True)
    return [np.stack([have[_h(w)] for w in ws]) for ws in per]


def _h(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def build_tantivy(folder: Path, docs, rep: int, title_field: bool):
    import tantivy

    sb = tantivy.SchemaBuilder()
    sb.add_integer_field("rowid", stored=True, indexed=True, fast=True)
    sb.add_text_field("text", stored=False, tokenizer_name="en_stem")
    sb.add_text_field("title", stored=False, tokenizer_name="en_stem")
    schema = sb.build()
    folder.mkdir(parents=True, exist_ok=True)
    index = tantivy.Index(schema, path=str(folder))
    w = index.writer(heap_size=100_000_000, num_threads=1)
    for rowid, title, abstract in docs:
        w.add_document(tantivy.Document(rowid=int(rowid), text=[title or ""] * rep + [abstract or ""],
                                        title=title or "" if title_field else ""))
    w.commit()
    w.wait_merging_threads()
    index.reload()
    return index


def lex_scores(index, words: list[str], k: int, boost: float) -> list[tuple[int, float]]:
    if not words:
        return []
    fields = ["text", "title"] if boost else ["text"]
    q = index.parse_query(" ".join(words), fields, field_boosts={"title": boost} if boost else {})
    s = index.searcher()
    hits = s.search(q, k).hits
    return [(int(s.doc(a)["rowid"][0]), float(sc)) for sc, a in hits]


def extract(args) -> dict:
    from paperwire.index.embeddings import get_embedder
    from paperwire.index.query import QueryError, parse_query
    from paperwire.store import embeddings as es
    from paperwire.store.db import connect

    conn = connect(args.scratch)
    emb = get_embedder("auto")
    rows = conn.execute("SELECT id, paper_id, title, abstract FROM papers ORDER BY id").fetchall()
    rowids = np.array([r[0] for r in rows])
    ids, V = es.paper_vectors(conn, emb.name)
    assert (ids == rowids).all(), "every paper needs its vector"
    per = [passages(r[2], r[3]) for r in rows]
    allp = es.get_embeddings(conn, f"{emb.name}:sent", {_h(p) for ps in per for p in ps})
    P = [np.stack([allp[_h(p)] for p in ps]) for ps in per]
    tmodel = f"{emb.name}:title"
    titles = [r[2] or "" for r in rows]
    have = es.get_embeddings(conn, tmodel, {_h(t) for t in titles})
    todo = list({_h(t): t for t in titles if _h(t) not in have}.items())
    t0 = time.process_time()
    for i in range(0, len(todo), 256):
        part = todo[i : i + 256]
        vecs = emb.encode([t for _, t in part])
        es.put_embeddings(conn, tmodel, [k for k, _ in part], vecs)
        have.update(zip([k for k, _ in part], vecs))
    print(f"titles embedded: {len(todo)} in {time.process_time() - t0:.1f} s CPU", flush=True)
    T = np.stack([have[_h(t)] for t in titles])
    queries = load_queries(args.beir)
    splits = {s: load_qrels(args.beir, s) for s in ("train", "test")}
    qids = [q for s in splits.values() for q in s]
    parsed = {}
    for q in qids:
        try:
            parsed[q] = parse_query(queries[q][:250])
        except QueryError:
            parsed[q] = None
    Q = emb.encode([parsed[q].text if parsed[q] else queries[q] for q in qids])
    docs = [(r[0], r[2], r[3]) for r in rows]
    lex = {}
    with tempfile.TemporaryDirectory() as tmp:
        variants = {"ship": (1, True, 0.2)}
        for rep in (1, 2, 3, 4):
            variants[f"rep{rep}"] = (rep, False, 0.0)
        for rep, b in ((1, 0.5), (2, 0.1), (2, 0.2), (2, 0.4)):
            variants[f"rep{rep}b{b}"] = (rep, True, b)
        built = {}
        for name, (rep, tf, b) in variants.items():
            key = (rep, tf)
            if key not in built:
                built[key] = build_tantivy(Path(tmp) / f"r{rep}{tf}", docs, rep, tf)
            lex[name] = {q: lex_scores(built[key], parsed[q].words if parsed[q] else [], 200, b) for q in qids}
            print("lexical variant", name, flush=True)
    return {"rowids": rowids, "pids": [r[1] for r in rows], "V": V, "T": T, "P": P, "Q": Q, "qids": qids,
            "splits": splits, "lex": lex, "n_words": {q: len(parsed[q].words) if parsed[q] else 0 for q in qids}}


def long_vectors(scratch: Path, V: np.ndarray) -> np.ndarray:
    """Paper vectors embedded at up to 512 tokens instead of 256 (71 % of SciFact's abstracts
    are longer than 256 tokens). Cached as ``<model>:512`` in the scratch database; papers of
    256 tokens or fewer keep their vector (the same text gives the same one)."""
    from paperwire.index.embeddings import OnnxMiniLM, load_tokenizer, paper_text
    from paperwire.store import embeddings as es
    from paperwire.store.db import connect

    conn = connect(scratch)
    rows = conn.execute("SELECT id, title, abstract FROM papers ORDER BY id").fetchall()
    texts = [paper_text(r[1], r[2]) for r in rows]
    lens = np.array([len(e.ids) for e in load_tokenizer(100_000).encode_batch(texts)])
    print(f"tokens per paper: mean {lens.mean():.0f}, median {np.median(lens):.0f}, over 256: {(lens > 256).mean():.1%}", flush=True)
    keys = [_h(t) for t in texts]
    model = "minilm-l6-int8-onnx:512"
    have = es.get_embeddings(conn, model, keys)
    todo = [i for i, k in enumerate(keys) if k not in have and lens[i] > 256]
    if todo:
        emb = OnnxMiniLM(max_length=512)
        t0 = time.process_time()
        for s in range(0, len(todo), 128):
            part = todo[s : s + 128]
            vecs = emb.encode([texts[i] for i in part])
            es.put_embeddings(conn, model, [keys[i] for i in part], vecs)
            have.update(zip([keys[i] for i in part], vecs))
        print(f"embedded {len(todo)} papers at 512 tokens: {time.process_time() - t0:.0f} s CPU", flush=True)
    return np.stack([have.get(k, v) for k, v in zip(keys, V)]).astype(np.float32)


def sentence_lex(scratch: Path, data: dict) -> dict:
    """Per query: {paper rowid: best BM25 of one of its sentences} from a tantivy index of the
    abstracts' sentences (title-prefixed, as the passages), top 500 sentences a query."""
    from paperwire.index.query import QueryError, parse_query
    from paperwire.store.db import connect

    conn = connect(scratch)
    docs = []
    for rid, title, abstract in conn.execute("SELECT id, title, abstract FROM papers ORDER BY id"):
        docs += [(rid, p, "") for p in passages(title, abstract)]
    queries = load_queries(Path(data["beir"]))
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        index = build_tantivy(Path(tmp) / "s", docs, 1, False)
        t0 = time.process_time()
        for q in data["qids"]:
            try:
                words = parse_query(queries[q][:250]).words
            except QueryError:
                words = []
            best: dict[int, float] = {}
            for r, sc in lex_scores(index, words, 500, 0.0):
                best[r] = max(best.get(r, 0.0), sc)
            out[q] = best
        print(f"sentence BM25: {len(docs)} sentences, {1e3 * (time.process_time() - t0) / len(data['qids']):.2f} ms CPU/query", flush=True)
    return out


def cpu_ab(args) -> None:
    """CPU per tantivy query (top 50, as hybrid asks) over the claims, alternating A/B three times."""
    from paperwire.index.query import QueryError, parse_query
    from paperwire.store.db import connect

    conn = connect(args.scratch)
    docs = [(r[0], r[1], r[2]) for r in conn.execute("SELECT id, title, abstract FROM papers ORDER BY id")]
    words = []
    for text in load_queries(args.beir).values():
        try:
            words.append(parse_query(text[:250]).words)
        except QueryError:
            pass
    words = [w for w in words if w]
    with tempfile.TemporaryDirectory() as tmp:
        ix = {"ship (text + title field, boost 0.2)": (build_tantivy(Path(tmp) / "a", docs, 1, True), 0.2),
              "rep2 (title twice in text, one field)": (build_tantivy(Path(tmp) / "b", docs, 2, False), 0.0)}
        for rnd in range(3):
            for name, (index, boost) in ix.items():
                fields = ["text", "title"] if boost else ["text"]
                t0 = time.process_time()
                for w in words:
                    q = index.parse_query(" ".join(w), fields, field_boosts={"title": boost} if boost else {})
                    index.searcher().search(q, 50)
                dt = time.process_time() - t0
                print(f"round {rnd}: {name}: {1e6 * dt / len(words):.0f} us CPU/query over {len(words)} claims", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("beir", type=Path)
    ap.add_argument("--scratch", required=True, type=Path)
    ap.add_argument("--cache", type=Path, default=None, help="default: <scratch>.levers2.pkl")
    ap.add_argument("--cpu", action="store_true", help="time the lexical stage: today's two-field query vs the repeated title")
    ap.add_argument("--set", type=int, default=1, choices=range(1, 10),
                    help="1 each lever alone, 2 combinations, 3 paired differences and more combinations, "
                         "4 passage pooling, 5 raw cosine and neighbour smoothing, 6 512-token paper vectors, 7 best-sentence BM25, 8 / 9 two- / three-sentence windows")
    args = ap.parse_args()
    if args.cpu:
        return cpu_ab(args)
    args.cache = args.cache or args.scratch.with_name(args.scratch.name + ".levers2.pkl")
    if args.cache.exists():
        data = pickle.loads(args.cache.read_bytes())
    else:
        data = extract(args)
        args.cache.write_bytes(pickle.dumps(data))
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    import levers2_score as ls

    if args.set in (8, 9):
        return ls.experiments8(data, embed_windows(args.scratch, args.set - 6))
    if args.set == 7:
        data["beir"] = str(args.beir)
        return ls.experiments7(data, sentence_lex(args.scratch, data))
    if args.set == 6:
        return ls.experiments6(data, long_vectors(args.scratch, data["V"]))
    {1: ls.experiments, 2: ls.experiments2, 3: ls.experiments3, 4: ls.experiments4, 5: ls.experiments5}[args.set](data)


if __name__ == "__main__":
    main()
