"""``docqa eval grounding``: tune the evidence weights and fit the answerability model on SQuAD, then
measure both on articles that took no part in the fitting.

The articles are split in half (``article_split``): the *tune* half fits, the *test* half measures (the
same half ``docqa eval answers`` asks about, and the adapter never trains on). Some articles of each
half are left out of the index: their questions are the ones a good answer declines. Retrieval runs
once per question; the per-sentence signals are kept, so every weight of the grid costs arithmetic only.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import product
from pathlib import Path

import numpy as np

from rag.answerability import fit, probability, signals
from rag.evaluation.datasets import EvalSet, Query
from rag.evaluation.metrics import contains_answer
from rag.evaluation.runner import BuiltCollection, EvalServices, PrecomputedQueryEmbedder
from rag.evidence import EvidenceSelector
from rag.prompting import build_passages
from rag.retrieval import Retriever

GRID = [0.0, 0.25, 0.5, 1.0, 2.0]
PASSAGE_GRID = [0.0, 0.1, 0.2, 0.4]


@dataclass
class Item:
    query: Query
    group: str  # tune | test
    features: dict[str, float]
    dense: np.ndarray
    lexical: np.ndarray
    passage: np.ndarray
    gold: np.ndarray  # per sentence: holds a gold answer
    retrieved_gold: bool  # a retrieved passage holds a gold answer


def holdouts(tune: Sequence[str], test: Sequence[str], seed: int, n_tune: int = 4, n_test: int = 3) -> list[str]:
    """Articles left out of the index: ``n_test`` test articles, chosen exactly as ``docqa eval answers``
    chooses its held-out articles, and ``n_tune`` tune articles for fitting."""
    return sorted(
        random.Random(seed).sample(sorted(test), n_test) + random.Random(seed + 1).sample(sorted(tune), n_tune)
    )


def collect(
    services: EvalServices,
    built: BuiltCollection,
    queries: Sequence[tuple[Query, str]],
    progress: Callable[[str], None] | None = None,
) -> list[Item]:
    settings = services.settings
    embedder = PrecomputedQueryEmbedder(services.embedder, [q.text for q, _ in queries])
    retriever = Retriever(settings.retrieval, embedder, None)
    selector = EvidenceSelector(settings.evidence, services.embedder)
    items = []
    for i, (q, group) in enumerate(queries, 1):
        retrieval = retriever.search(built.reader, q.text)
        passages = build_passages(retrieval.hits, settings.retrieval.merge_adjacent)
        sig = selector.measure(q.text, passages)
        ranked = selector.rank(q.text, passages, signals=sig)
        gold = np.array([contains_answer(u.text, q.answers) for u in sig.units], dtype=bool)
        items.append(
            Item(
                q,
                group,
                signals(q.text, retrieval, ranked),
                sig.dense,
                sig.lexical,
                sig.passage,
                gold,
                any(contains_answer(p.text, q.answers) for p in passages),
            )
        )
        if progress and i % 200 == 0:
            progress(f"{i}/{len(queries)} questions")
    return items


def evidence_hits(items: Sequence[Item], w: tuple[float, float, float]) -> dict[str, float]:
    """Share of answerable questions whose best (and best three) sentences hold a gold answer."""
    top1 = top3 = 0
    for it in items:
        if not len(it.gold):
            continue
        scores = w[0] * it.dense + w[1] * it.lexical + w[2] * it.passage
        order = np.argsort(-scores, kind="stable")
        top1 += bool(it.gold[order[0]])
        top3 += bool(it.gold[order[:3]].any())
    n = max(1, len(items))
    return {"top1": round(top1 / n, 4), "top3": round(top3 / n, 4)}


def decline_rates(items: Sequence[Item], weights: dict[str, float], threshold: float) -> dict[str, float]:
    pos = [it for it in items if not it.query.held_out]
    neg = [it for it in items if it.query.held_out]

    def declined(rows: Sequence[Item]) -> float:
        return round(sum(probability(it.features, weights) < threshold for it in rows) / max(1, len(rows)), 4)

    return {"held_out_declined": declined(neg), "in_index_declined": declined(pos)}


def pick_threshold(items: Sequence[Item], weights: dict[str, float], min_declined: float) -> float:
    """The highest-answering threshold that still declines ``min_declined`` of the held-out questions."""
    neg = sorted(probability(it.features, weights) for it in items if it.query.held_out)
    if not neg:
        return 0.5
    k = min(len(neg) - 1, int(np.ceil(min_declined * len(neg))) - 1)
    return float(min(0.99, neg[k] + 1e-6))


def tune_grounding(
    services: EvalServices,
    evalset: EvalSet,
    built: BuiltCollection,
    tune_articles: Sequence[str],
    *,
    per_group: int,
    min_declined: float = 0.96,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> dict:
    rng = random.Random(seed)
    tune_set = set(tune_articles)
    buckets: dict[tuple[str, bool], list[Query]] = {}
    for q in evalset.queries:
        buckets.setdefault(("tune" if q.article in tune_set else "test", q.held_out), []).append(q)
    chosen: list[tuple[Query, str]] = []
    for (group, _held), qs in sorted(buckets.items()):
        chosen.extend((q, group) for q in rng.sample(qs, min(per_group, len(qs))))
    items = collect(services, built, chosen, progress)
    tune = [it for it in items if it.group == "tune"]
    test = [it for it in items if it.group == "test"]

    answerable_tune = [it for it in tune if not it.query.held_out]
    grid = []
    for wd, wl, wp in product(GRID, GRID, PASSAGE_GRID):
        if wd == wl == 0:
            continue
        grid.append({"dense": wd, "lexical": wl, "passage": wp, **evidence_hits(answerable_tune, (wd, wl, wp))})
    best = max(grid, key=lambda g: (g["top1"], g["top3"], -g["passage"]))
    weights_tuple = (best["dense"], best["lexical"], best["passage"])
    answerable_test = [it for it in test if not it.query.held_out]
    evidence = {
        "weights": {
            "dense_weight": best["dense"],
            "lexical_weight": best["lexical"],
            "passage_weight": best["passage"],
        },
        "tune": evidence_hits(answerable_tune, weights_tuple),
        "test": evidence_hits(answerable_test, weights_tuple),
        "test_dense_only": evidence_hits(answerable_test, (1.0, 0.0, 0.0)),
        "test_lexical_only": evidence_hits(answerable_test, (0.0, 1.0, 0.0)),
        "test_gold_retrieved": round(
            sum(it.retrieved_gold for it in answerable_test) / max(1, len(answerable_test)), 4
        ),
        "grid": grid,
    }

    coef = fit([it.features for it in tune], [0 if it.query.held_out else 1 for it in tune])
    threshold = pick_threshold(tune, coef, min_declined)
    curve = []
    for t in np.linspace(0.0, 1.0, 41):
        curve.append({"threshold": round(float(t), 3), **decline_rates(test, coef, float(t))})
    dense_curve = []
    for t in np.linspace(0.0, 0.8, 41):
        dense_only = {"intercept": -float(t), "best_dense": 1.0}
        dense_curve.append({"threshold": round(float(t), 3), **decline_rates(test, dense_only, 0.5)})
    answerability = {
        "weights": {k: round(v, 4) for k, v in coef.items()},
        "threshold": round(threshold, 4),
        "min_declined_on_tune": min_declined,
        "tune": decline_rates(tune, coef, threshold),
        "test": decline_rates(test, coef, threshold),
        "test_dense_035": decline_rates(test, {"intercept": -0.35, "best_dense": 1.0}, 0.5),
        "curve": curve,
        "dense_curve": dense_curve,
    }
    counts = {f"{g}_{'held_out' if h else 'in_index'}": len(v) for (g, h), v in buckets.items()}
    return {
        "kind": "grounding",
        "dataset": evalset.name,
        "documents": built.documents,
        "chunks": built.chunks,
        "queries": len(items),
        "tune_articles": sorted(tune_set),
        "held_out_articles": evalset.held_out_articles,
        "questions_available": counts,
        "questions_used": len(items),
        "evidence": evidence,
        "answerability": answerability,
    }


def plot_decline_curve(result: dict, path: Path) -> None:
    """Held-out questions declined against answerable ones declined, as the threshold moves: the fitted
    answerability model beside the single dense-cosine threshold it replaced (test half of the articles)."""
    import matplotlib

    matplotlib.use("Agg")  # no display: render to a file
    import matplotlib.pyplot as plt

    an = result["answerability"]
    fig, ax = plt.subplots(figsize=(5.5, 4.2), dpi=110)
    for key, label in (("curve", "answerability model"), ("dense_curve", "best dense cosine alone")):
        points = sorted(an[key], key=lambda p: (p["in_index_declined"], p["held_out_declined"]))
        ax.plot([p["in_index_declined"] for p in points], [p["held_out_declined"] for p in points], label=label)
    chosen, old = an["test"], an["test_dense_035"]
    label = f"threshold {an['threshold']}"
    ax.scatter([chosen["in_index_declined"]], [chosen["held_out_declined"]], zorder=3, label=label)
    ax.scatter([old["in_index_declined"]], [old["held_out_declined"]], marker="x", zorder=3, label="old: cosine 0.35")
    ax.set_xlim(0, 0.3)
    ax.set_ylim(0.5, 1.0)
    ax.set_xlabel("answerable questions declined")
    ax.set_ylabel("held-out questions declined")
    ax.set_title("Declining, SQuAD test articles")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
