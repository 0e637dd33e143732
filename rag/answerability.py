"""Answerability: do the documents hold the answer? A logistic model over retrieval and evidence signals.

One dense-cosine threshold separated questions about indexed and held-out SQuAD articles at best 92% /
11%. Several weak signals together do better: the best chunk cosine, the best single sentence cosine,
how much of the question's wording the best sentence and the best passage hold, the BM25 score per
query term, and how far the top fused hit stands above the second. The coefficients live in settings
(``answer.answerable_weights``), fitted by ``docqa eval grounding`` on SQuAD articles that the
answer evaluation does not ask about; deciding costs a dot product.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from rag.evidence import Ranked, coverage, term_weights
from rag.lexical import tokenize
from rag.retrieval import Retrieval

FEATURES = (
    "best_dense",
    "best_sentence_dense",
    "best_lexical",
    "passage_lexical",
    "bm25_top",
    "fused_margin",
)


def signals(question: str, retrieval: Retrieval, ranked: Ranked) -> dict[str, float]:
    """The features of one question, by name."""
    hits = retrieval.hits
    q_terms = tokenize(question)
    passage_terms = [tokenize(h.chunk.text) for h in hits]
    idf = term_weights(passage_terms) if passage_terms else {}
    passage_lexical = max((coverage(q_terms, set(t), idf) for t in passage_terms), default=0.0)
    bm25 = max((h.bm25_score or 0.0 for h in hits), default=0.0)
    margin = hits[0].score - hits[1].score if len(hits) > 1 else (hits[0].score if hits else 0.0)
    return {
        "best_dense": float(retrieval.best_dense),
        "best_sentence_dense": ranked.best_dense,
        "best_lexical": ranked.best_lexical,
        "passage_lexical": float(passage_lexical),
        "bm25_top": float(bm25) / max(1, len(set(q_terms))),
        "fused_margin": float(margin),
    }


def probability(features: Mapping[str, float], weights: Mapping[str, float]) -> float:
    """P(answerable) under the fitted coefficients; features without a coefficient weigh nothing."""
    z = weights.get("intercept", 0.0) + sum(weights.get(k, 0.0) * v for k, v in features.items())
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


def fit(rows: Sequence[Mapping[str, float]], labels: Sequence[int], l2: float = 1e-2, iters: int = 50) -> dict:
    """L2-regularised logistic regression by Newton's method (a handful of features: exact and quick).

    Returns the coefficients by feature name plus ``intercept``, on the features' raw scale."""
    x = np.array([[r[f] for f in FEATURES] for r in rows], dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = np.hstack([np.ones((len(x), 1)), (x - mean) / std])
    w = np.zeros(z.shape[1])
    reg = l2 * np.eye(z.shape[1])
    reg[0, 0] = 0.0
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ w, -50, 50)))
        grad = z.T @ (p - y) + reg @ w
        hess = z.T @ (z * (p * (1 - p))[:, None]) + reg
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    coef = w[1:] / std
    out = {"intercept": float(w[0] - (coef * mean).sum())}
    out.update({f: float(c) for f, c in zip(FEATURES, coef, strict=True)})
    return out
