"""Rank fusion of the dense and BM25 candidate lists."""

from __future__ import annotations

from rag.settings import RetrievalSettings


def fuse(
    dense: list[tuple[int, float]], lexical: list[tuple[int, float]], settings: RetrievalSettings
) -> list[tuple[int, float]]:
    """Weighted reciprocal-rank fusion: score = sum of weight / (rrf_k + rank) over the lists a chunk is in."""
    scores: dict[int, float] = {}
    for weight, ranking in ((settings.dense_weight, dense), (settings.bm25_weight, lexical)):
        if weight <= 0:
            continue
        for rank, (cid, _score) in enumerate(ranking, start=1):
            scores[cid] = scores.get(cid, 0.0) + weight / (settings.rrf_k + rank)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))
