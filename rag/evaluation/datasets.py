"""Turn BEIR and SQuAD files into documents the real ingest pipeline reads, plus the gold mappings.

Every passage (BEIR) or paragraph (SQuAD) becomes one file in a work directory. The file name
encodes the id, so a retrieved chunk maps back to exactly one gold document through its source
path: ``doc_id_from_path`` is the inverse of the writers here.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote

from rag.errors import DocqaError

BEIR_DIR = "beir"
SQUAD_DIR = "squad"


@dataclass
class Query:
    qid: str
    text: str
    relevance: dict[str, float]  # doc id -> graded relevance (SQuAD: the gold paragraph, 1.0)
    answers: list[str] = field(default_factory=list)  # SQuAD gold answer texts
    held_out: bool = False  # about an article that is not in the index (expect a decline)
    article: str = ""  # SQuAD: the article the question is about


@dataclass
class EvalSet:
    """Documents written to ``docs_dir`` and the queries judged against their ids."""

    name: str
    docs_dir: Path
    doc_ids: list[str]
    queries: list[Query]
    held_out_articles: list[str] = field(default_factory=list)

    @property
    def in_index(self) -> list[Query]:
        return [q for q in self.queries if not q.held_out]

    @property
    def held_out(self) -> list[Query]:
        return [q for q in self.queries if q.held_out]


class EvalDataError(DocqaError):
    """An evaluation data set is missing or malformed."""


def _safe(name: str) -> str:
    return quote(name, safe="-_.") or "_"


def doc_id_from_path(path: str) -> str | None:
    """The document id a source path encodes (``beir/<id>.txt`` or ``squad/<title>/<n>.md``)."""
    parts = Path(path).parts
    if len(parts) >= 2 and parts[-2] == BEIR_DIR:
        return unquote(Path(parts[-1]).stem)
    if len(parts) >= 3 and parts[-3] == SQUAD_DIR:
        return f"{unquote(parts[-2])}#{int(Path(parts[-1]).stem)}"
    return None


def _read_jsonl(path: Path) -> Iterable[dict]:
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def load_beir(beir_dir: Path, work_dir: Path, *, split: str = "test", max_queries: int | None = None) -> EvalSet:
    """BEIR corpus.jsonl + queries.jsonl + qrels/<split>.tsv; only judged queries are kept."""
    corpus, queries, qrels = beir_dir / "corpus.jsonl", beir_dir / "queries.jsonl", beir_dir / "qrels" / f"{split}.tsv"
    for needed in (corpus, queries, qrels):
        if not needed.exists():
            raise EvalDataError(
                f"{needed} is missing: a BEIR directory holds corpus.jsonl, queries.jsonl and qrels/{split}.tsv"
            )
    judged: dict[str, dict[str, float]] = {}
    with open(qrels, encoding="utf-8") as fh:
        for row in csv.reader(fh, delimiter="\t"):
            if len(row) < 3 or row[0] == "query-id":
                continue
            judged.setdefault(row[0], {})[row[1]] = float(row[2])
    out_dir = work_dir / BEIR_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    doc_ids = []
    for doc in _read_jsonl(corpus):
        text = doc.get("text", "").strip()
        title = (doc.get("title") or "").strip()
        if title:
            text = f"{title}\n\n{text}"
        if not text:
            continue
        doc_id = str(doc["_id"])
        (out_dir / f"{_safe(doc_id)}.txt").write_text(text + "\n", encoding="utf-8")
        doc_ids.append(doc_id)
    qs = [
        Query(str(q["_id"]), q["text"], judged[str(q["_id"])])
        for q in _read_jsonl(queries)
        if any(r > 0 for r in judged.get(str(q["_id"]), {}).values())
    ]
    return EvalSet(beir_dir.name, out_dir, doc_ids, qs[:max_queries] if max_queries else qs)


def squad_titles(squad_file: Path) -> list[str]:
    """The article titles of a SQuAD v1.1 file, in file order."""
    if not squad_file.exists():
        raise EvalDataError(f"{squad_file} does not exist: pass a SQuAD v1.1 JSON file (squad.json)")
    try:
        return [a["title"] for a in json.loads(squad_file.read_text(encoding="utf-8"))["data"]]
    except (json.JSONDecodeError, KeyError) as exc:
        raise EvalDataError(f"{squad_file} is not SQuAD v1.1 JSON (a top-level 'data' list): {exc}") from exc


def article_split(titles: Iterable[str], seed: int = 0) -> tuple[list[str], list[str]]:
    """(tune, test): a stable half of the articles for training and fitting (the adapter, the evidence
    weights, the answerability model), the other half for measuring them. The order is a seeded hash
    of the titles, so it does not depend on the order of the file."""
    ranked = sorted(set(titles), key=lambda t: hashlib.sha256(f"{seed}:{t}".encode()).hexdigest())
    half = len(ranked) // 2
    return sorted(ranked[:half]), sorted(ranked[half:])


def load_squad(
    squad_file: Path,
    work_dir: Path,
    *,
    holdout_articles: int = 0,
    seed: int = 0,
    max_articles: int | None = None,
    holdout_from: Iterable[str] | None = None,
    exclude: Iterable[str] = (),
) -> EvalSet:
    """SQuAD v1.1 JSON: each paragraph a markdown document headed by its article title.

    ``holdout_articles`` articles (chosen with ``seed``, among ``holdout_from`` when given) are not
    written; their questions are kept, marked ``held_out``, to measure declining. Articles in ``exclude``
    are left out of the index too, and so are their questions. ``max_articles`` keeps the first N
    articles (tests).
    """
    if not squad_file.exists():
        raise EvalDataError(f"{squad_file} does not exist: pass a SQuAD v1.1 JSON file (squad.json)")
    try:
        articles = json.loads(squad_file.read_text(encoding="utf-8"))["data"]
    except (json.JSONDecodeError, KeyError) as exc:
        raise EvalDataError(f"{squad_file} is not SQuAD v1.1 JSON (a top-level 'data' list): {exc}") from exc
    if max_articles:
        articles = articles[:max_articles]
    excluded = set(exclude)
    articles = [a for a in articles if a["title"] not in excluded]
    titles = [a["title"] for a in articles]
    pool = sorted(set(holdout_from) & set(titles)) if holdout_from is not None else titles
    if holdout_articles >= len(titles) or holdout_articles > len(pool):
        raise EvalDataError(f"cannot hold out {holdout_articles} of {len(pool)} articles; hold out fewer")
    held = set(random.Random(seed).sample(pool, holdout_articles)) if holdout_articles else set()
    out_dir = work_dir / SQUAD_DIR
    doc_ids: list[str] = []
    queries: list[Query] = []
    for article in articles:
        title = article["title"]
        heading = title.replace("_", " ")
        article_dir = out_dir / _safe(title)
        if title not in held:
            article_dir.mkdir(parents=True, exist_ok=True)
        for i, para in enumerate(article["paragraphs"]):
            doc_id = f"{title}#{i}"
            if title not in held:
                (article_dir / f"{i:04d}.md").write_text(f"# {heading}\n\n{para['context'].strip()}\n", "utf-8")
                doc_ids.append(doc_id)
            for qa in para["qas"]:
                answers = [a["text"] for a in qa.get("answers", [])]
                queries.append(Query(str(qa["id"]), qa["question"], {doc_id: 1.0}, answers, title in held, title))
    return EvalSet(squad_file.stem, out_dir, doc_ids, queries, sorted(held))
