"""Scoring functions: SQuAD's answer normalisation, exact match and token F1, and ranking metrics.

The SQuAD functions follow the official v1.1 evaluation script (lower case, punctuation and the
articles a/an/the removed, whitespace collapsed) so numbers are comparable with published ones.
Ranking metrics take a ranked list of document ids and the graded relevance of the gold ones.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lower case, drop punctuation and articles, collapse whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, golds: Iterable[str]) -> float:
    """1.0 when the normalised prediction equals any normalised gold answer."""
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(g) for g in golds))


def _f1(prediction: str, gold: str) -> float:
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    common = Counter(pred_tokens) & Counter(gold_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def squad_f1(prediction: str, golds: Iterable[str]) -> float:
    """Token F1 against the best-matching gold answer."""
    return max((_f1(prediction, g) for g in golds), default=0.0)


def contains_answer(text: str, golds: Iterable[str]) -> bool:
    """Whether a gold answer occurs in ``text`` (both normalised): the citation-support test."""
    hay = f" {normalize_answer(text)} "
    return any(f" {normalize_answer(g)} " in hay for g in golds if normalize_answer(g))


# -- ranking metrics --------------------------------------------------------------------------------


def ndcg_at_k(ranked: Sequence[str], relevance: Mapping[str, float], k: int = 10) -> float:
    """nDCG@k with graded gains (``rel / log2(rank + 1)``), as in BEIR's pytrec_eval setup."""
    dcg = sum(relevance.get(doc, 0.0) / math.log2(i + 2) for i, doc in enumerate(_unique(ranked)[:k]))
    ideal = sorted((r for r in relevance.values() if r > 0), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranked: Sequence[str], relevance: Mapping[str, float], k: int = 100) -> float:
    """Share of the relevant documents found in the top k."""
    relevant = {d for d, r in relevance.items() if r > 0}
    if not relevant:
        return 0.0
    return len(relevant & set(_unique(ranked)[:k])) / len(relevant)


def mrr_at_k(ranked: Sequence[str], relevance: Mapping[str, float], k: int = 10) -> float:
    """Reciprocal rank of the first relevant document within the top k (0 when none)."""
    for i, doc in enumerate(_unique(ranked)[:k]):
        if relevance.get(doc, 0.0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def hit_at_k(ranked: Sequence[str], relevance: Mapping[str, float], k: int) -> float:
    """1.0 when a relevant document is in the top k."""
    return float(any(relevance.get(doc, 0.0) > 0 for doc in _unique(ranked)[:k]))


def _unique(ranked: Sequence[str]) -> list[str]:
    """Document ids in rank order, each once: several chunks of one document count as one result."""
    seen: set[str] = set()
    out = []
    for doc in ranked:
        if doc not in seen:
            seen.add(doc)
            out.append(doc)
    return out


RANKING_METRICS = ("ndcg@10", "recall@100", "mrr@10", "hit@1", "hit@5")


def ranking_scores(ranked: Sequence[str], relevance: Mapping[str, float]) -> dict[str, float]:
    """Every ranking metric the reports show, for one query."""
    return {
        "ndcg@10": ndcg_at_k(ranked, relevance, 10),
        "recall@100": recall_at_k(ranked, relevance, 100),
        "mrr@10": mrr_at_k(ranked, relevance, 10),
        "hit@1": hit_at_k(ranked, relevance, 1),
        "hit@5": hit_at_k(ranked, relevance, 5),
    }


def mean_scores(per_query: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Average each metric over the queries."""
    if not per_query:
        return {}
    keys = per_query[0].keys()
    return {key: sum(q[key] for q in per_query) / len(per_query) for key in keys}
