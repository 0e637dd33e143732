"""``docqa eval answers``: SQuAD questions through the real answering path (retrieve, prompt, generate,
map citations), scored with SQuAD's exact match and token F1, citation support and declining.

Also measures the refusal signal on every question of the set: the best dense cosine score for
questions whose article is indexed against questions whose article was held out, and the threshold
that separates them best (Youden's J), which is how ``retrieval.min_dense_score`` is tuned.
"""

from __future__ import annotations

import random
import re
import statistics
import time
from collections.abc import Callable, Sequence

from rag.evaluation.datasets import EvalSet, Query
from rag.evaluation.metrics import contains_answer, exact_match, squad_f1
from rag.evaluation.runner import BuiltCollection, PrecomputedQueryEmbedder
from rag.retrieval import Retriever
from rag.services import Services
from rag.types import Answer

_MARKERS = re.compile(r"\s*\[\d{1,3}(?:\s*,\s*\d{1,3})*\]")

ANSWER_METRICS = ("exact_match", "f1", "citation_has_answer", "no_citation", "declined_in_index", "declined_held_out")


def strip_markers(text: str) -> str:
    """The answer without its [n] citation markers, which are not part of the answer text."""
    return _MARKERS.sub("", text).strip()


def pick_questions(evalset: EvalSet, limit: int | None, held_out_limit: int | None, seed: int) -> list[Query]:
    """A seeded sample: ``limit`` in-index questions and ``held_out_limit`` about held-out articles."""
    rng = random.Random(seed)
    inside, outside = list(evalset.in_index), list(evalset.held_out)
    rng.shuffle(inside)
    rng.shuffle(outside)
    inside = inside[:limit] if limit else inside
    if held_out_limit is None:
        held_out_limit = max(1, len(inside) // 4)
    return inside + outside[:held_out_limit]


def score_answer(query: Query, answer: Answer) -> dict[str, float | bool]:
    text = strip_markers(answer.answer or "")
    return {
        "exact_match": exact_match(text, query.answers) if not answer.declined else 0.0,
        "f1": squad_f1(text, query.answers) if not answer.declined else 0.0,
        "citation_has_answer": any(contains_answer(c.text, query.answers) for c in answer.citations),
        "no_citation": not answer.declined and not answer.citations,
        "declined": answer.declined,
    }


def refusal_curve(in_scores: Sequence[float], out_scores: Sequence[float], steps: int = 41) -> dict:
    """Decline rates of both groups at thresholds from 0 to 0.8, and the threshold with the best J.

    Declining below the threshold: a held-out question declined is a true positive, an in-index one a
    false positive. J = TPR - FPR picks the point furthest from chance.
    """
    if not in_scores or not out_scores:
        return {}
    points = []
    for i in range(steps):
        t = round(0.8 * i / (steps - 1), 3)
        tpr = sum(s < t for s in out_scores) / len(out_scores)
        fpr = sum(s < t for s in in_scores) / len(in_scores)
        points.append({"threshold": t, "held_out_declined": round(tpr, 4), "in_index_declined": round(fpr, 4)})
    best = max(points, key=lambda p: (p["held_out_declined"] - p["in_index_declined"], -p["threshold"]))
    return {
        "in_index_best_dense": _summary(in_scores),
        "held_out_best_dense": _summary(out_scores),
        "best_threshold": best,
        "points": points,
    }


def _summary(values: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "p10": round(ordered[int(0.1 * (len(ordered) - 1))], 4),
        "median": round(statistics.median(ordered), 4),
        "p90": round(ordered[int(0.9 * (len(ordered) - 1))], 4),
    }


def best_dense_scores(services: Services, built: BuiltCollection, queries: Sequence[Query]) -> list[float]:
    embedder = PrecomputedQueryEmbedder(services.embedder, [q.text for q in queries])
    retriever = Retriever(services.settings.retrieval, embedder, None)
    return [retriever.search(built.reader, q.text, top_k=1, mode="dense").best_dense for q in queries]


def evaluate_answers(
    services: Services,
    evalset: EvalSet,
    built: BuiltCollection,
    *,
    limit: int | None,
    held_out_limit: int | None = None,
    model: str | None = None,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> dict:
    services.generator.check()  # fail fast, with the server's own message, before any work
    questions = pick_questions(evalset, limit, held_out_limit, seed)
    records = []
    started = time.perf_counter()
    for i, q in enumerate(questions, 1):
        t0 = time.perf_counter()
        answer = services.pipeline.ask(q.text, collection=built.name, model=model)
        seconds = time.perf_counter() - t0
        records.append(
            {
                "id": q.qid,
                "question": q.text,
                "held_out": q.held_out,
                "gold": q.answers,
                "answer": answer.answer,
                "cited": [c.source.rsplit("/", 2)[-2:] for c in answer.citations],
                "seconds": round(seconds, 3),
                **score_answer(q, answer),
            }
        )
        if progress and (i % 10 == 0 or i == len(questions)):
            progress(f"{i}/{len(questions)} answers ({time.perf_counter() - started:.0f} s)")
    inside = [r for r in records if not r["held_out"]]
    outside = [r for r in records if r["held_out"]]

    def share(rows: list[dict], key: str) -> float | None:
        return round(sum(float(r[key]) for r in rows) / len(rows), 4) if rows else None

    times = [r["seconds"] for r in records]
    row = {
        "model": model or services.settings.llm_model_name,
        "exact_match": share(inside, "exact_match"),
        "f1": share(inside, "f1"),
        "citation_has_answer": share(inside, "citation_has_answer"),
        "no_citation": share(inside, "no_citation"),
        "declined_in_index": share(inside, "declined"),
        "declined_held_out": share(outside, "declined"),
        "s_per_answer": round(statistics.mean(times), 2) if times else None,
        "s_p95": round(sorted(times)[int(0.95 * (len(times) - 1))], 2) if times else None,
    }
    all_in = evalset.in_index
    all_out = evalset.held_out
    curve = refusal_curve(best_dense_scores(services, built, all_in), best_dense_scores(services, built, all_out))
    return {
        "kind": "answers",
        "dataset": evalset.name,
        "documents": built.documents,
        "chunks": built.chunks,
        "queries": len(records),
        "in_index_questions": len(inside),
        "held_out_questions": len(outside),
        "held_out_articles": evalset.held_out_articles,
        "min_dense_score": services.settings.retrieval.min_dense_score,
        "temperature": services.settings.llm.temperature,
        "seed": seed,
        "rows": [row],
        "refusal_curve": curve,
        "answers": records,
    }
