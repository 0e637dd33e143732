"""``docqa eval answers``: SQuAD questions through the real answering path (retrieve, decide, prompt,
generate, verify, map citations), scored with SQuAD's exact match and token F1, whether the shown answer
contains a gold answer, citation support, claims shown without support, and declining.
"""

from __future__ import annotations

import hashlib
import random
import statistics
import time
from collections.abc import Callable, Set

from rag.evaluation.datasets import EvalSet, Query
from rag.evaluation.metrics import contains_answer, exact_match, squad_f1
from rag.evaluation.runner import BuiltCollection, EvalServices
from rag.prompting import strip_markers
from rag.types import Answer, Question

ANSWER_METRICS = (
    "answer_has_gold",
    "exact_match",
    "f1",
    "citation_has_answer",
    "unsupported_claims",
    "quoted",
    "wrong_short",
    "quote_holds",
    "no_citation",
    "declined_in_index",
    "declined_held_out",
    "s_median",
)


def question_split(qid: str) -> str:
    """'dev' or 'locked', by a hash of the question's id: dev questions may be read to build and tune; locked
    ones are run only to report a finished change, never read to write a rule."""
    return "dev" if hashlib.sha256(qid.encode()).digest()[0] % 2 == 0 else "locked"


def pick_questions(
    evalset: EvalSet,
    limit: int | None,
    held_out_limit: int | None,
    seed: int,
    articles: Set[str] | None = None,
    split: str | None = None,
) -> list[Query]:
    """A seeded sample: ``limit`` in-index questions (about ``articles`` only, when given) and
    ``held_out_limit`` about held-out articles; of the ``split`` ('dev' or 'locked') only, when given."""
    rng = random.Random(seed)
    inside = [q for q in evalset.in_index if articles is None or q.article in articles]
    outside = list(evalset.held_out)
    if split:
        inside = [q for q in inside if question_split(q.qid) == split]
        outside = [q for q in outside if question_split(q.qid) == split]
    rng.shuffle(inside)
    rng.shuffle(outside)
    inside = inside[:limit] if limit else inside
    if held_out_limit is None:
        held_out_limit = max(1, len(inside) // 4)
    return inside + outside[:held_out_limit]


def unsupported_claims(answer: Answer) -> int:
    """Sentences shown to the user that the verifier finds unsupported by their cited passages (a quote
    is the source's own words; a decline claims nothing)."""
    if answer.declined or answer.mode == "quote":
        return 0
    return sum(not c.supported for c in answer.checks)


def score_answer(query: Query, answer: Answer) -> dict[str, float | bool]:
    text = strip_markers(answer.answer or "")
    has_gold = contains_answer(text, query.answers) if not answer.declined else False
    own = not answer.declined and answer.mode != "quote"
    return {
        "answer_has_gold": has_gold,
        "wrong_short": own and not has_gold,  # the model's own answer shown, and it misses: "wrong but cited"
        "quote_holds": answer.mode == "quote" and has_gold,
        "unsupported_claims": unsupported_claims(answer),
        "quoted": answer.mode == "quote",
        "retried": answer.retried,
        "exact_match": exact_match(text, query.answers) if not answer.declined else 0.0,
        "f1": squad_f1(text, query.answers) if not answer.declined else 0.0,
        "citation_has_answer": any(contains_answer(c.text, query.answers) for c in answer.citations),
        "no_citation": not answer.declined and not answer.citations,
        "declined": answer.declined,
    }


def stage_medians(records: list[dict]) -> dict[str, float]:
    """``ms_<stage>``: the median milliseconds of each stage over the answers that had it (retrieval,
    verification, and each kind of model call), so a row says where the time of a typical answer goes."""
    stages: dict[str, list[float]] = {}
    for r in records:
        for stage, ms in r["stage_ms"].items():
            stages.setdefault(stage, []).append(ms)
    return {f"ms_{stage}": round(statistics.median(v), 1) for stage, v in stages.items()}


def evaluate_answers(
    services: EvalServices,
    evalset: EvalSet,
    built: BuiltCollection,
    *,
    limit: int | None,
    held_out_limit: int | None = None,
    model: str | None = None,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    articles: Set[str] | None = None,
    split: str | None = None,
) -> dict:
    services.generator.check()  # fail fast, with the server's own message, before any work
    questions = pick_questions(evalset, limit, held_out_limit, seed, articles, split)
    records = []
    started = time.perf_counter()
    for i, q in enumerate(questions, 1):
        t0 = time.perf_counter()
        answer = services.pipeline.ask(Question(q.text, built.name, model=model))
        seconds = time.perf_counter() - t0
        shown = answer.passages or answer.citations
        records.append(
            {
                "id": q.qid,
                "question": q.text,
                "held_out": q.held_out,
                "gold": q.answers,
                "answer": answer.answer,
                "generated": answer.generated,
                "mode": answer.mode,
                "answerable": answer.answerable,
                "checked": answer.checked,
                "evidence_checked": answer.evidence_checked,
                "problems": [p for c in answer.checks for p in c.problems],
                "evidence": answer.evidence[0].text if answer.evidence else None,
                "gold_shown": any(contains_answer(c.text, q.answers) for c in shown),
                "cited": [c.source.rsplit("/", 2)[-2:] for c in answer.citations],
                "seconds": round(seconds, 3),
                "timings": answer.timings.as_json() if answer.timings else None,
                "stage_ms": {k: round(v, 1) for k, v in answer.timings.stages().items()} if answer.timings else {},
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
        "model": model or services.pipeline.default_model(),
        "mode": services.settings.answer.mode,
        "answer_has_gold": share(inside, "answer_has_gold"),
        "exact_match": share(inside, "exact_match"),
        "f1": share(inside, "f1"),
        "citation_has_answer": share(inside, "citation_has_answer"),
        "unsupported_claims": sum(int(r["unsupported_claims"]) for r in records),
        "quoted": share(inside, "quoted"),
        "wrong_short": share(inside, "wrong_short"),
        "quote_holds": share(inside, "quote_holds"),
        "retried": share(inside, "retried"),
        "gold_shown": share(inside, "gold_shown"),
        "no_citation": share(inside, "no_citation"),
        "declined_in_index": share(inside, "declined"),
        "declined_held_out": share(outside, "declined"),
        "s_per_answer": round(statistics.mean(times), 2) if times else None,
        "s_median": round(statistics.median(times), 2) if times else None,
        "s_p95": round(sorted(times)[int(0.95 * (len(times) - 1))], 2) if times else None,
        **stage_medians(records),
    }
    return {
        "kind": "answers",
        "dataset": evalset.name,
        "documents": built.documents,
        "chunks": built.chunks,
        "queries": len(records),
        "in_index_questions": len(inside),
        "held_out_questions": len(outside),
        "held_out_articles": evalset.held_out_articles,
        "answerable_threshold": services.settings.answer.answerable_threshold,
        "temperature": services.settings.llm.temperature,
        "seed": seed,
        "split": split or "all",
        "rows": [row],
        "answers": records,
    }
