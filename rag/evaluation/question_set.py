"""``docqa eval answers --questions FILE --docs DIR``: your own documents and questions, scored by key strings.

The question file is JSON, either a list of questions or an object ``{"format": ..., "provenance": [...],
"questions": [...]}``. Each question::

    {"id": "q1", "question": "How many tables can a join hold?", "answer": "64.",
     "must_contain": ["64"], "file": "sqlite/limits.html", "page": null,
     "kind": "qualifier", "answerable": true, "doc_set": "sqlite", "split": "dev"}

``must_contain`` lists strings a right answer must hold, all of them; ``"1000 | 1,000"`` accepts either
(``rag.evaluation.keyed`` says how they are matched). ``file`` is relative to the ``--docs`` folder and
``page`` is the 1-based PDF page (null for other formats); both only check the citations. A question the
documents do not answer has ``"answerable": false`` and no keys: declining it is right. ``kind``,
``doc_set`` and ``split`` are optional labels (the report groups by the first two; ``--split`` picks by the
third). The documents are ingested into a throwaway collection and every question goes through the same
answering path as ``docqa ask``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.errors import ConfigError
from rag.evaluation.keyed import ANSWERABLE_VERDICTS, aggregate, citation_match, missing_keys, verdict
from rag.evaluation.report import markdown_table
from rag.evaluation.runner import BuiltCollection, EvalServices
from rag.prompting import strip_markers
from rag.types import Question

SPLITS = ("dev", "locked", "all")


@dataclass(frozen=True)
class KeyedQuestion:
    id: str
    question: str
    must_contain: list[str]
    answerable: bool = True
    answer: str | None = None
    file: str | None = None
    page: int | None = None
    kind: str = "question"
    doc_set: str = "documents"
    split: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _question(raw: dict[str, Any], where: str) -> KeyedQuestion:
    if not isinstance(raw, dict) or not raw.get("id") or not raw.get("question"):
        raise ConfigError(f"{where}: each question needs an 'id' and a 'question'")
    answerable = bool(raw.get("answerable", True))
    must = raw.get("must_contain") or []
    if not isinstance(must, list) or not all(isinstance(k, str) and k.strip() for k in must):
        raise ConfigError(f"{where} ({raw['id']}): 'must_contain' must be a list of non-empty strings")
    if answerable and not must:
        raise ConfigError(f"{where} ({raw['id']}): an answerable question needs at least one 'must_contain' key")
    page = raw.get("page")
    if page is not None and (not isinstance(page, int) or page < 1):
        raise ConfigError(f"{where} ({raw['id']}): 'page' is a 1-based PDF page number or null")
    known = {"id", "question", "must_contain", "answerable", "answer", "file", "page", "kind", "doc_set", "split"}
    return KeyedQuestion(
        id=str(raw["id"]), question=raw["question"], must_contain=must, answerable=answerable,
        answer=raw.get("answer"), file=raw.get("file"), page=page,
        kind=raw.get("kind") or ("question" if answerable else "unanswerable"),
        doc_set=raw.get("doc_set") or "documents", split=raw.get("split"),
        extra={k: v for k, v in raw.items() if k not in known},
    )


def load_question_set(path: Path, split: str = "all") -> tuple[dict[str, Any], list[KeyedQuestion]]:
    """The file's header (everything but the questions) and its questions in ``split`` ("all": every one)."""
    if split not in SPLITS:
        raise ConfigError(f"--split is one of {', '.join(SPLITS)}, not {split!r}")
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the question file {path}: {exc}") from exc
    header: dict[str, Any] = {k: v for k, v in data.items() if k != "questions"} if isinstance(data, dict) else {}
    raw = data.get("questions") if isinstance(data, dict) else data
    if not isinstance(raw, list):
        raise ConfigError(f"{path}: expected a list of questions or an object with a 'questions' list")
    questions = [_question(q, str(path)) for q in raw]
    ids = [q.id for q in questions]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{path}: question ids must be unique")
    picked = [q for q in questions if split == "all" or q.split == split]
    if not picked:
        raise ConfigError(f"{path}: no questions in split {split!r}")
    return header, picked


def interleaved(questions: list[KeyedQuestion]) -> list[KeyedQuestion]:
    """Round-robin over the (doc set, kind) groups, each in file order: the first questions asked cover every
    group, so a run stopped early still samples the whole set."""
    groups: dict[tuple[str, str], list[KeyedQuestion]] = {}
    for q in questions:
        groups.setdefault((q.doc_set, q.kind), []).append(q)
    ordered = [groups[key] for key in sorted(groups)]
    return [g[i] for i in range(max(map(len, ordered), default=0)) for g in ordered if i < len(g)]


def _relative(source: str, corpus: Path) -> str:
    try:
        return Path(source).resolve().relative_to(corpus.resolve()).as_posix()
    except ValueError:
        return source


def evaluate_question_set(
    services: EvalServices,
    questions: list[KeyedQuestion],
    built: BuiltCollection,
    corpus: Path,
    *,
    model: str | None = None,
    progress: Callable[[str], None] | None = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Ask each question through ``services.pipeline`` (as ``docqa ask`` does) and score what is shown;
    ``on_row`` gets each scored row as soon as it is ready (a long run's partial results)."""
    services.generator.check()  # fail fast, with the server's own message, before any work
    rows = []
    started = time.perf_counter()
    questions = interleaved(questions)
    for i, q in enumerate(questions, 1):
        t0 = time.perf_counter()
        answer = services.pipeline.ask(Question(q.question, built.name, model=model))
        seconds = time.perf_counter() - t0
        shown = strip_markers(answer.answer or "")
        quoted = answer.mode == "quote"
        cited = [(_relative(c.source, corpus), c.page) for c in answer.citations]
        match = citation_match(cited, q.file, q.page) if q.answerable else citation_match([], None, None)
        rows.append(
            {
                "id": q.id,
                "doc_set": q.doc_set,
                "kind": q.kind,
                "split": q.split,
                "answerable": q.answerable,
                "question": q.question,
                "reference": q.answer,
                "must_contain": q.must_contain,
                "answer": None if answer.declined else shown,
                "generated": answer.generated,
                "problems": [p for c in answer.checks for p in c.problems],  # why a draft was refused
                "mode": answer.mode,
                "declined": answer.declined,
                "verdict": verdict(
                    answerable=q.answerable, declined=answer.declined, quoted=quoted, shown=shown,
                    must_contain=q.must_contain,
                ),
                "missing": [] if answer.declined or not q.answerable else missing_keys(shown, q.must_contain),
                "file": q.file,
                "page": q.page,
                "cited": [list(c) for c in cited],
                "file_cited": match.file,
                "page_cited": match.page,
                "answerable_p": None if answer.answerable is None else round(answer.answerable, 4),
                "checked": answer.checked,
                "evidence_checked": answer.evidence_checked,
                "seconds": round(seconds, 3),
            }
        )
        if on_row:
            on_row(rows[-1])
        if progress and (i % 10 == 0 or i == len(questions)):
            progress(f"{i}/{len(questions)} answers ({time.perf_counter() - started:.0f} s)")
    return {
        "kind": "answers",
        "model": model or services.pipeline.default_model(),
        "mode": services.settings.answer.mode,
        "documents": built.documents,
        "chunks": built.chunks,
        "ingest_s": round(built.ingest_s, 1),
        "failed_files": built.failed,
        "temperature": services.settings.llm.temperature,
        **aggregate(rows),
        "rows": rows,
    }


# summary.md's columns: (heading, figure of rag.evaluation.keyed.summarise).
_COLUMNS = (
    ("questions", "questions"), ("answerable", "answerable"), *((v, v) for v in ANSWERABLE_VERDICTS),
    ("right+quote_holds", "right_or_quote_holds"), ("wrong share", "wrong_shown"),
    ("declined share", "answerable_declined"), ("unanswerable", "unanswerable"),
    ("unans. declined", "declined_unanswerable"), ("unans. answered", "answered_unanswerable"),
    ("unans. quoted", "answered_quote_unanswerable"), ("unans. declined share", "unanswerable_declined"),
    ("cited file", "cited_file"), ("cited page", "cited_page"),
)


def render_summary(result: dict[str, Any], title: str) -> str:
    """``summary.md``: the targets, then the verdict counts in total, per kind and per doc set."""
    targets = [{**t, "met": {True: "yes", False: "no", None: "n/a"}[t["met"]]} for t in result["targets"]]

    def table(groups: dict[str, dict[str, Any]]) -> str:
        return markdown_table([{"group": name, **{h: s.get(f) for h, f in _COLUMNS}} for name, s in groups.items()])

    parts = [
        f"**{title}** - {result['model']} ({result['mode']}), {result['documents']} documents, "
        f"{result['chunks']} chunks (ingest {result['ingest_s']} s), {result['total']['questions']} questions "
        f"({result['total']['answerable']} answerable); seconds per answer: median {result['s_median']}, "
        f"p95 {result['s_p95']}",
        "Verdicts: right = the model's own answer holds every key; quote_holds / quote_misses = a quoted passage "
        "was shown and does / does not hold every key; wrong = the model's own answer misses a key. Shares are "
        "of answerable questions, except the unanswerable declined share. cited file / page: share of the "
        "answers shown that cite the expected file / page.",
        "Targets (issue 24):\n\n" + markdown_table(targets),
        "Totals:\n\n" + table({"all": result["total"]}),
        "Per kind:\n\n" + table(result["by_kind"]),
        "Per doc set:\n\n" + table(result["by_doc_set"]),
    ]
    return "\n\n".join(parts) + "\n"


def write_results(result: dict[str, Any], out_dir: Path, title: str) -> dict[str, Path]:
    """``results.json`` (everything, one row per question) and ``summary.md`` in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "results.json", "markdown": out_dir / "summary.md"}
    paths["json"].write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    paths["markdown"].write_text(render_summary(result, title), encoding="utf-8")
    return paths
