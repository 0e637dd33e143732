"""SQuAD v1.1 as a fine-tuning experiment: every paragraph a document in a collection, the questions a
Q/A file whose ``group`` is the article, so the dataset splits train and held-out by article.

The paragraph files are the ones ``rag.evaluation.datasets.load_squad`` writes (``squad/<title>/NNNN.md``,
headed by the article title), so ``docqa eval`` and fine-tuning see the same documents.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from rag.evaluation.datasets import load_squad


@dataclass
class SquadSet:
    docs_dir: Path
    qa_path: Path
    articles: int
    paragraphs: int
    questions: int


def write_squad_qa(
    squad_file: Path,
    work_dir: Path,
    *,
    questions_per_article: int | None = None,
    max_articles: int | None = None,
    seed: int = 0,
    exclude: Iterable[str] = (),
) -> SquadSet:
    """Paragraph documents under ``work_dir/squad/`` and ``work_dir/squad-qa.jsonl``.

    ``questions_per_article`` samples that many questions per article (seeded), which keeps a CPU run
    short while every article still contributes. Articles in ``exclude`` (the ones evaluation asks about)
    are neither written nor asked."""
    evalset = load_squad(squad_file, work_dir, max_articles=max_articles, exclude=exclude)
    by_article: dict[str, list[Any]] = {}
    for q in evalset.queries:
        doc_id = next(iter(q.relevance))
        by_article.setdefault(doc_id.rsplit("#", 1)[0], []).append(q)
    rng = random.Random(seed)
    qa_path = work_dir / "squad-qa.jsonl"
    count = 0
    with open(qa_path, "w", encoding="utf-8") as fh:
        for article, queries in by_article.items():
            if questions_per_article and len(queries) > questions_per_article:
                queries = rng.sample(queries, questions_per_article)
            for q in queries:
                title, index = next(iter(q.relevance)).rsplit("#", 1)
                source = _paragraph_path(evalset.docs_dir, title, int(index))
                record = {
                    "question": q.text,
                    "answer": q.answers[0],
                    "answers": sorted(set(q.answers)),
                    "source": str(source.resolve()),
                    "group": article,
                }
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
                count += 1
    return SquadSet(evalset.docs_dir, qa_path, len(by_article), len(evalset.doc_ids), count)


def _paragraph_path(docs_dir: Path, title: str, index: int) -> Path:
    # The layout load_squad writes: squad/<quoted title>/<NNNN>.md
    return docs_dir / (quote(title, safe="-_.") or "_") / f"{index:04d}.md"
