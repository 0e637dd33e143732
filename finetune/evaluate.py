"""Base model against adapter on the dataset's held-out questions, side by side, with the same retrieval.

Answerable questions go through the real answering path (``services.pipeline.ask(Question(..., model=NAME))``):
retrieval, prompt, vLLM, citation mapping. Scores: SQuAD token F1 and exact match of the answer (its
``[n]`` markers removed) against the gold answers, and the share of answers citing the gold chunk (a
citation of the gold document whose text holds a gold answer, or the gold chunk itself). The decline
examples (contexts with the gold document removed) are sent as built, through the same generator, and
scored by the pipeline's own decline test; a retriever cannot be told to miss a document, so this is
the one place where the stored prompt stands in for retrieval.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from finetune.data import load_dataset
from rag.errors import ModelServerError
from rag.evaluation.metrics import contains_answer, exact_match, squad_f1
from rag.prompting import is_decline, strip_markers
from rag.types import Question


def _mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def _cites_gold(answer: Any, example: dict[str, Any]) -> bool:
    return any(
        c.source == example["gold_source"]
        and (c.chunk_id == example["gold_chunk_id"] or contains_answer(c.text, example["answers"]))
        for c in answer.citations
    )


def _gold_shown(answer: Any, example: dict[str, Any]) -> bool:
    return any(
        p.source == example["gold_source"]
        and (p.chunk_id == example["gold_chunk_id"] or contains_answer(p.text, example["answers"]))
        for p in answer.passages
    )


def evaluate(
    services: Any,
    data_path: Path,
    models: Sequence[str],
    *,
    limit: int | None = None,
    on_item: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Scores per model, and each question's answers; ``limit`` caps each kind of held-out question."""
    header, examples = load_dataset(data_path)
    collection = header["collection"]
    heldout = [e for e in examples if e["split"] == "heldout"]
    answerable = [e for e in heldout if e["kind"] == "answer"][:limit]
    unanswerable = [e for e in heldout if e["kind"] == "decline"][:limit]
    served = services.generator.models()
    missing = [m for m in models if m not in served]
    if missing:
        raise ModelServerError(
            f"the model server at {', '.join(services.settings.llm.endpoints)} does not serve {', '.join(missing)} "
            f"(it serves: {', '.join(served) or 'nothing'}); register the adapter with `docqa finetune register "
            "NAME` and restart it (`docqa model stop && docqa model serve --detach`), or pass --serve"
        )
    settings = services.settings
    summary: dict[str, dict[str, Any]] = {}
    rows: list[dict[str, Any]] = [
        {"id": e["id"], "question": e["question"], "gold": e["answers"], "gold_source": e["gold_source"]}
        for e in answerable
    ]
    decline_rows: list[dict[str, Any]] = [{"id": e["id"], "question": e["question"]} for e in unanswerable]
    for model in models:
        t0 = time.perf_counter()
        f1s, ems, cites, cites_shown, false_declines, shown = [], [], [], [], [], []
        errors = 0
        for row, ex in zip(rows, answerable, strict=True):
            try:
                answer = services.pipeline.ask(Question(ex["question"], collection, model=model))
            except ModelServerError as exc:
                # One failed request (a timeout on a starved CPU) scores as a miss, not the end of an
                # hour-long comparison; the count is reported beside the scores.
                errors += 1
                f1s.append(0.0)
                ems.append(0.0)
                cites.append(0.0)
                false_declines.append(0.0)
                row[model] = {"error": str(exc)}
                if on_item:
                    on_item(model)
                continue
            text = strip_markers(answer.answer or "")
            f1, em = squad_f1(text, ex["answers"]), exact_match(text, ex["answers"])
            cited, was_shown = _cites_gold(answer, ex), _gold_shown(answer, ex)
            f1s.append(f1)
            ems.append(em)
            cites.append(float(cited))
            shown.append(float(was_shown))
            if was_shown:
                cites_shown.append(float(cited))
            false_declines.append(float(answer.declined))
            row[model] = {"answer": answer.answer, "f1": round(f1, 4), "em": em, "cites_gold": cited}
            if on_item:
                on_item(model)
        declined = []
        for row, ex in zip(decline_rows, unanswerable, strict=True):
            try:
                reply = services.generator.chat(
                    ex["messages"],
                    model=model,
                    max_tokens=settings.llm.max_tokens,
                    temperature=settings.llm.temperature,
                )
            except ModelServerError as exc:
                errors += 1
                declined.append(0.0)
                row[model] = {"error": str(exc)}
                if on_item:
                    on_item(model)
                continue
            ok = is_decline(strip_markers(reply))
            declined.append(float(ok))
            row[model] = {"answer": reply, "declined": ok}
            if on_item:
                on_item(model)
        summary[model] = {
            "f1": _mean(f1s),
            "exact_match": _mean(ems),
            "cites_gold": _mean(cites),
            "cites_gold_when_shown": _mean(cites_shown),
            "declined_without_answer": _mean(declined),
            "declined_with_answer": _mean(false_declines),
            "gold_retrieved": _mean(shown),
            "errors": errors,
            "seconds": round(time.perf_counter() - t0, 1),
        }
    return {
        "dataset": str(Path(data_path).resolve()),
        "dataset_sha256": header["examples_sha256"],
        "collection": collection,
        "models": list(models),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "settings": {
            "top_k": settings.retrieval.top_k,
            "max_tokens": settings.llm.max_tokens,
            "temperature": settings.llm.temperature,
        },
        "summary": summary,
        "answers": rows,
        "declines": decline_rows,
    }


METRIC_LABELS = {
    "f1": "answer token F1",
    "exact_match": "exact match",
    "cites_gold": "cites the gold chunk",
    "cites_gold_when_shown": "cites gold (when retrieved)",
    "declined_without_answer": "declines when context lacks answer",
    "declined_with_answer": "declines when answer is there",
    "gold_retrieved": "gold chunk retrieved",
}
