"""GPU embedding throughput (device="cuda"): paperwire's torch fp16 path vs sentence-transformers'
encode on the same GPU (fp32 and fp16), on real abstracts repeated to N, plus the two ceilings
(tokenisation alone, and a bare fp16 forward over pre-tokenised length-sorted batches).

    python bench/embed_gpu.py [-n 100000] [--batch 512] [--tokens 65536 131072] [--chunk 16384]

Needs a CUDA device and `pip install 'paperwire[gpu]'` (or $PAPERWIRE_MINILM_DIR pointing at a
local copy of the sentence-transformers folder). Target on one H100: >= 25,000 abstracts/s.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from embed_common import arxiv_abstracts, machine, now


def timed(fn, sync) -> tuple[float, object]:
    sync()
    t = time.perf_counter()
    out = fn()
    sync()
    return time.perf_counter() - t, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--tokens", type=int, nargs="+", default=[65536, 131072], help="padded tokens per batch")
    ap.add_argument("--chunk", type=int, nargs="+", default=[16384], help="texts tokenised per pipeline step")
    ap.add_argument("--anchor-n", type=int, default=20_000, help="abstracts for the ST anchor runs")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--device", default="cuda", help="cpu runs the same code slowly (a dry run of the script)")
    args = ap.parse_args()
    import torch

    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this benchmark needs a GPU")
    from paperwire.index.embed_torch import _padded_batches, _st_model_dir
    from paperwire.index.embeddings import get_embedder, paper_text, tokenize_ids

    sync = torch.cuda.synchronize if cuda else (lambda: None)
    base = [paper_text(t, a) for t, a in arxiv_abstracts(None)]
    texts = (base * (args.n // len(base) + 1))[: args.n]
    print(f"# embed_gpu  {now()}  {machine()}  torch {torch.__version__}  {torch.cuda.get_device_name() if cuda else 'cpu'}")
    print(f"# {len(base):,} distinct real abstracts repeated to {len(texts):,}; cpu cores {os.cpu_count()}")
    e = get_embedder("torch", device=args.device)
    e.encode_bucketed(texts[:4096], batch_size=args.batch)  # warm-up (cuBLAS, allocator, pinned pool)
    rows = []

    # Ceiling 1: tokenisation alone (Rust, all cores), as the pipeline runs it.
    s, encs = timed(lambda: tokenize_ids(e.tokenizer, texts), sync)
    rows.append(("tokenise only (tokenizers, all cores)", len(texts) / s))
    mean_len = float(np.mean([len(x.ids) for x in encs[: len(base)]]))
    # Ceiling 2: bare fp16 forward + pooling over pre-tokenised, length-sorted batches on the GPU.
    batches = _padded_batches(encs, 0, args.batch * 4, args.tokens[0])
    dev_batches = [torch.from_numpy(ids).to(args.device).long() for _, ids in batches]

    def bare():
        with torch.inference_mode():
            for ids in dev_batches:
                mask = ids.ne(0)
                h = e.bert(input_ids=ids, attention_mask=mask.long()).last_hidden_state
                m = mask.unsqueeze(-1).to(h.dtype)
                torch.nn.functional.normalize((h * m).sum(1).float() / m.sum(1).float(), dim=1)

    bare()
    s, _ = timed(bare, sync)
    rows.append((f"bare fp16 forward, pre-tokenised on GPU ({args.tokens[0]} tokens/batch)", len(texts) / s))
    del dev_batches, encs

    best, vec = 0.0, None
    for tokens in args.tokens:
        for chunk in args.chunk:
            for _ in range(args.repeat):
                s, v = timed(lambda: e.encode_bucketed(texts, batch_size=args.batch, tokens_per_batch=tokens, chunk_size=chunk), sync)
                rate = len(texts) / s
                rows.append((f"paperwire encode_bucketed end to end (tokens/batch {tokens}, chunk {chunk})", rate))
                if rate > best:
                    best, vec = rate, v
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else 0.0

    from sentence_transformers import SentenceTransformer

    sub = texts[: args.anchor_n]
    for label, half in (("fp32", False), ("fp16", True))[: 2 if cuda else 1]:
        st = SentenceTransformer(_st_model_dir(), device=args.device)
        st.max_seq_length = 256
        st.half() if half else st.float()
        st.encode(sub[:1024], batch_size=128)
        s, ref = timed(lambda: st.encode(sub, batch_size=128, normalize_embeddings=True, convert_to_numpy=True), sync)
        rows.append((f"sentence-transformers encode {label}, batch 128 (anchor, {len(sub):,} texts)", len(sub) / s))
        if not half:
            cos = np.sum(vec[: len(sub)] * ref, axis=1)
            print(f"cosine(paperwire fp16, ST fp32) over {len(sub):,}: mean {cos.mean():.5f}, min {cos.min():.5f}")
        del st
        if cuda:
            torch.cuda.empty_cache()

    print(f"mean tokens per abstract {mean_len:.0f}; peak GPU memory {peak:.2f} GiB; best paperwire {best:,.0f}/s")
    print("| what | abstracts/s |")
    print("|---|---:|")
    for label, rate in rows:
        print(f"| {label} | {rate:,.0f} |")


if __name__ == "__main__":
    main()
