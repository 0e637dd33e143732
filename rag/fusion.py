"""Fusion of the dense and BM25 candidate lists into one ranking.

Two rules, chosen by ``RetrievalSettings.fusion``:

- ``convex`` (default): each list's scores are min-max normalised over its candidates (a chunk a list
  did not return gets that list's floor, 0), then mixed as ``w_d * dense + w_b * bm25`` with the
  weights scaled to sum to one. Unlike rank fusion it keeps *how much* better the top hit is, so a
  confident retriever outvotes an unsure one; with a dense-leaning weight it beats both parts on
  SQuAD and MS MARCO (the table in the README, from ``docqa eval retrieval``).
- ``rrf``: weighted reciprocal-rank fusion, ``sum of weight / (rrf_k + rank)``: score-free and robust,
  but on MS MARCO with equal weights it loses to dense alone.
"""

from __future__ import annotations

from rag.settings import RetrievalSettings

Ranking = list[tuple[int, float]]


def fuse(dense: Ranking, lexical: Ranking, settings: RetrievalSettings) -> Ranking:
    """One ranking of (chunk id, fused score), best first; ties broken by chunk id for determinism."""
    if settings.fusion == "rrf":
        scores = rrf_scores(dense, lexical, settings.dense_weight, settings.bm25_weight, settings.rrf_k)
    else:
        scores = convex_scores(dense, lexical, settings.dense_weight, settings.bm25_weight)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


def rrf_scores(dense: Ranking, lexical: Ranking, w_dense: float, w_bm25: float, k: int) -> dict[int, float]:
    scores: dict[int, float] = {}
    for weight, ranking in ((w_dense, dense), (w_bm25, lexical)):
        if weight <= 0:
            continue
        for rank, (cid, _score) in enumerate(ranking, start=1):
            scores[cid] = scores.get(cid, 0.0) + weight / (k + rank)
    return scores


def normalise(ranking: Ranking) -> dict[int, float]:
    """Min-max scale a list's scores to [0, 1]; a list of equal scores maps to 1 (all equally good)."""
    if not ranking:
        return {}
    values = [s for _, s in ranking]
    lo, hi = min(values), max(values)
    span = hi - lo
    return {cid: (s - lo) / span if span > 0 else 1.0 for cid, s in ranking}


def convex_scores(dense: Ranking, lexical: Ranking, w_dense: float, w_bm25: float) -> dict[int, float]:
    # A list that is empty (BM25 found no query term, or the mode turned a retriever off) carries no
    # evidence: the other list's order is kept as it is rather than diluted.
    total = (w_dense if dense else 0.0) + (w_bm25 if lexical else 0.0)
    if total <= 0:
        total = 1.0
    scores: dict[int, float] = {}
    for weight, ranking in ((w_dense, dense), (w_bm25, lexical)):
        if weight <= 0 or not ranking:
            continue
        for cid, value in normalise(ranking).items():
            scores[cid] = scores.get(cid, 0.0) + weight / total * value
    for cid, _ in (*dense, *lexical):
        scores.setdefault(cid, 0.0)  # in a list whose weight is zero: ranked last, still a candidate
    return scores
