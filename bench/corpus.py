"""Synthetic collections for the scale benchmarks: real sentences for BM25, clustered unit vectors for FAISS.

Uniformly random vectors have no neighbourhood structure, which makes every approximate index look
worse than on real embeddings; points scattered around a few thousand random centres behave more
like sentence embeddings (topics) while staying cheap to make at a million rows.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import numpy as np

EVAL_DIR = Path(__file__).resolve().parents[2] / "shared" / "eval"
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_FALLBACK = (
    "The warranty covers parts and labour for two years. Returns are accepted within thirty days. "
    "The service desk answers tickets on working days. Invoices are sent at the end of each month."
)


def sentence_pool(limit: int = 60_000) -> list[str]:
    """Sentences from the shared evaluation corpora (MS MARCO passages, SQuAD paragraphs)."""
    texts: list[str] = []
    corpus = EVAL_DIR / "beir-msmarco-5k" / "corpus.jsonl"
    if corpus.exists():
        texts += [json.loads(line)["text"] for line in corpus.open(encoding="utf-8") if line.strip()]
    squad = EVAL_DIR / "squad-dev" / "squad.json"
    if squad.exists():
        for article in json.loads(squad.read_text(encoding="utf-8"))["data"]:
            texts += [p["context"] for p in article["paragraphs"]]
    sentences = [s for t in texts for s in _SENTENCE.split(t) if len(s) > 20] or _SENTENCE.split(_FALLBACK)
    return sentences[:limit]


def synthetic_texts(n: int, seed: int = 0, sentences_per_chunk: int = 4) -> list[str]:
    """``n`` chunk texts, each a few random real sentences (word statistics of real text)."""
    pool = sentence_pool()
    rng = random.Random(seed)
    return [" ".join(rng.choices(pool, k=sentences_per_chunk)) for _ in range(n)]


def clustered_vectors(n: int, dim: int = 384, centres: int = 2000, spread: float = 0.6, seed: int = 0) -> np.ndarray:
    """``n`` L2-normalised float32 vectors around random centres, built in blocks to bound memory."""
    rng = np.random.default_rng(seed)
    centre_vecs = rng.standard_normal((centres, dim), dtype=np.float32)
    centre_vecs /= np.linalg.norm(centre_vecs, axis=1, keepdims=True)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):
        stop = min(n, start + 100_000)
        block = centre_vecs[rng.integers(0, centres, stop - start)]
        block += spread / np.sqrt(dim) * rng.standard_normal((stop - start, dim), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start:stop] = block
    return out


def queries_near(vectors: np.ndarray, count: int, seed: int = 1, spread: float = 0.6) -> np.ndarray:
    """Query vectors near random stored points (a question near some chunk, not a copy of it)."""
    rng = np.random.default_rng(seed)
    base = vectors[rng.integers(0, len(vectors), count)]
    q = base + spread / np.sqrt(vectors.shape[1]) * rng.standard_normal(base.shape, dtype=np.float32)
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)
