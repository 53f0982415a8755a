"""Helpers for the search tests: a small corpus with authors, categories and dates."""

from __future__ import annotations

from paperwire.ingest import import_records
from paperwire.model import PaperRecord

CORPUS = [
    dict(arxiv_id="2401.00001", title="Attention Is All You Need Again",
         abstract="We revisit transformer attention for machine translation and show that multi-head attention scales.",
         authors=["Ada Lovelace", "Alan Turing"], categories=["cs.CL", "cs.LG"], published="2024-01-03T00:00:00Z", upvotes=50),
    dict(arxiv_id="2401.00002", title="Graph Neural Networks for Molecules",
         abstract="Message passing neural networks predict molecular properties. Graph networks learn from atoms and bonds.",
         authors=["Marie Curie"], categories=["cs.LG", "q-bio.QM"], published="2024-01-10T00:00:00Z", upvotes=5),
    dict(arxiv_id="2302.00003", title="Diffusion Models for Image Synthesis",
         abstract="Denoising diffusion probabilistic models generate images. We study sampling speed of diffusion.",
         authors=["Alan Turing", "Grace Hopper"], categories=["cs.CV"], published="2023-02-01T00:00:00Z", upvotes=30),
    dict(arxiv_id="2205.00004", title="Protein Folding with Deep Learning",
         abstract="Deep networks predict protein structure from sequence; attention over residues helps folding.",
         authors=["Rosalind Franklin"], categories=["q-bio.BM"], published="2022-05-20T00:00:00Z", upvotes=12),
    dict(arxiv_id="2311.00005", title="Scaling Laws for Language Models",
         abstract="Language model loss follows power laws in parameters, data and compute for transformer language models.",
         authors=["Grace Hopper", "José Núñez"], categories=["cs.CL"], published="2023-11-11T00:00:00Z", upvotes=80),
    dict(arxiv_id="2312.00006", title="Reinforcement Learning from Human Feedback",
         abstract="We fine-tune language models with reinforcement learning from human preference data.",
         authors=["Ada Lovelace"], categories=["cs.LG", "cs.AI"], published="2023-12-24T00:00:00Z", upvotes=40),
    dict(arxiv_id="2104.00007", title="Galaxy Rotation Curves and Dark Matter",
         abstract="Observations of galaxy rotation curves constrain dark matter halos in spiral galaxies.",
         authors=["Vera Rubin"], categories=["astro-ph.GA"], published="2021-04-02T00:00:00Z", upvotes=3),
    dict(arxiv_id="2402.00008", title="A Survey of Attention Mechanisms",
         abstract="This survey covers attention mechanisms: additive attention, dot-product attention and sparse attention.",
         authors=["Claude Shannon"], categories=["cs.LG"], published="2024-02-14T00:00:00Z", upvotes=7),
]


def make_records(rows=CORPUS):
    return [PaperRecord(source="test", **r) for r in rows]


def load_corpus(conn, rows=CORPUS):
    return import_records(conn, make_records(rows), track_changes=True)
