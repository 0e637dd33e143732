"""Training sets for the LoRA adapter, built the RAFT way: train on the context the model will really see.

Each (question, answer) pair is run through the real retriever of a collection. The chunk that holds the
answer (the gold chunk) is kept at the rank the retriever gave it, among the retriever's other hits (the
distractors); when retrieval missed it, it is put at a random rank in place of the weakest hit. The prompt
is rendered with ``rag.prompting.build_messages``, exactly what the answer pipeline sends, and the target
is the answer with a ``[n]`` marker after each sentence naming the gold passage. For a share of the
questions a second example shows the same question with the gold document removed from the context and
the decline sentence as the target, so the model learns to decline rather than improvise.

Examples are split into train and held-out by group (the source document, or the article for SQuAD), so
evaluation asks about documents the adapter never saw. The output is JSONL: a header line recording the
inputs (paths and sha256), the settings used, counts and the sha256 of the example lines; then one line
per example.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from finetune.items import DatasetError, QAItem
from finetune.synthetic import synthesize
from rag.evaluation.metrics import contains_answer, normalize_answer
from rag.hashing import sha256_file
from rag.prompting import DECLINE_TEXT, Passage, build_messages, build_passages, strip_markers
from rag.store import CollectionReader, index_text
from rag.types import Filters, Hit, StoredChunk

FORMAT = "docqa-finetune/1"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
_WORD = re.compile(r"\w+")


@dataclass
class Example:
    id: str
    split: str  # train | heldout
    kind: str  # answer | decline
    origin: str
    group: str
    question: str
    answers: list[str]
    target: str
    messages: list[dict[str, str]]
    passages: list[dict[str, Any]]  # n, source, page, chunk_ids: what the prompt shows, for evaluation
    gold_n: int | None
    gold_source: str | None
    gold_chunk_id: int | None
    gold_retrieved: bool

    def as_json(self) -> dict[str, Any]:
        return {"type": "example", **asdict(self)}


@dataclass
class BuildReport:
    examples: list[Example]
    skipped: list[dict[str, str]]
    header: dict[str, Any]


# -- reading inputs ---------------------------------------------------------------------------------


def _jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    if not path.is_file():
        raise DatasetError(f"{path} does not exist: pass a JSONL file, one JSON object a line")
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}:{lineno} is not JSON ({exc}); fix or remove that line") from exc
            if not isinstance(record, dict):
                raise DatasetError(f"{path}:{lineno} is not a JSON object")
            yield lineno, record


def read_qa(path: Path) -> list[QAItem]:
    """A user's Q/A file: ``{"question", "answer", "source"?, "page"?, "answers"?, "group"?}`` a line."""
    items = []
    for lineno, r in _jsonl(path):
        question, answer = str(r.get("question") or "").strip(), str(r.get("answer") or "").strip()
        if not question or not answer:
            raise DatasetError(f"{path}:{lineno} needs non-empty 'question' and 'answer' fields")
        answers = [str(a) for a in r.get("answers") or [] if str(a).strip()]
        page = r.get("page")
        items.append(
            QAItem(
                question,
                answer,
                answers or [answer],
                source=r.get("source") or None,
                page=int(page) if page not in (None, "") else None,
                group=r.get("group") or None,
            )
        )
    return items


def read_feedback(path: Path) -> tuple[list[QAItem], int]:
    """Staff feedback export: answers rated ``up`` become items; returns them and the number ignored.

    The gold source is the first citation the answer actually uses (its ``[n]``), else the first one."""
    items, ignored = [], 0
    for _, r in _jsonl(path):
        answer = strip_markers(str(r.get("answer") or ""))
        if r.get("rating") != "up" or not answer or not r.get("question"):
            ignored += 1
            continue
        citations = r.get("citations") or []
        used = [int(m) for m in re.findall(r"\[(\d{1,3})\]", str(r.get("answer")))]
        cited = next((c for n in used for c in citations if c.get("n") == n), citations[0] if citations else None)
        items.append(
            QAItem(
                str(r["question"]).strip(),
                answer,
                source=cited.get("source") if cited else None,
                page=cited.get("page") if cited else None,
                origin="feedback",
                gold_text=cited.get("text") if cited else None,
            )
        )
    return items, ignored


# -- finding the gold chunk -------------------------------------------------------------------------


def _glob_escape(path: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", path)


def document_chunks(reader: CollectionReader, source: str) -> list[StoredChunk]:
    """Every chunk of the documents ``source`` names: an exact stored path, or a path suffix."""
    paths = [d.path for d in reader.documents()]
    src = source.replace("\\", "/")
    matches = [p for p in paths if p == src] or [p for p in paths if p.endswith("/" + src.lstrip("/"))]
    chunks: list[StoredChunk] = []
    for path in matches:
        ids = reader.chunk_ids(Filters(source_glob=_glob_escape(path)))
        chunks.extend(reader.chunks(ids.tolist()).values())
    return sorted(chunks, key=lambda c: (c.content_hash, c.ordinal))


def _overlap(answer: str, text: str) -> float:
    words = set(_WORD.findall(normalize_answer(answer)))
    if not words:
        return 0.0
    return len(words & set(_WORD.findall(normalize_answer(text)))) / len(words)


def _shown(chunk: StoredChunk) -> str:
    """A chunk as the prompt shows it: its section heading (a slide title, say) is part of the evidence."""
    return index_text(chunk.text, chunk.heading)


def find_gold(item: QAItem, hits: Sequence[Hit], candidates: Sequence[StoredChunk]) -> StoredChunk | None:
    """The chunk that supports the answer: a retrieved chunk of the named source holding the answer,
    then any chunk of that source holding it, then (for free-form answers) the best word overlap."""
    in_source = {c.id for c in candidates}
    retrieved = [h.chunk for h in hits if not in_source or h.chunk.id in in_source]
    if item.gold_text:
        # A feedback citation shows one chunk, or adjacent chunks merged into one passage.
        shown = normalize_answer(item.gold_text)
        for chunk in [*retrieved, *candidates]:
            text = normalize_answer(_shown(chunk))
            if text and (shown in text or text in shown):
                return chunk
    for pool in (retrieved, candidates):
        for chunk in pool:
            if contains_answer(_shown(chunk), item.answers):
                return chunk
    pool = list(candidates) or retrieved
    if not pool:
        return None
    best = max(pool, key=lambda c: _overlap(item.answer, _shown(c)))
    if candidates:
        return best  # the named source is trusted: its chunk closest to the answer
    # Without a source, a free-form answer must share at least half its words with the chunk.
    return best if _overlap(item.answer, _shown(best)) >= 0.5 else None


# -- composing examples ----------------------------------------------------------------------------


def cite(answer: str, n: int) -> str:
    """Put ``[n]`` after every sentence of ``answer``, before its final punctuation (the prompt's rule)."""
    out = []
    for sentence in _SENTENCE_END.split(strip_markers(answer)):
        sentence = sentence.strip()
        if not sentence:
            continue
        if sentence[-1] in ".!?":
            out.append(f"{sentence[:-1]} [{n}]{sentence[-1]}")
        else:
            out.append(f"{sentence} [{n}]")
    return " ".join(out)


def _passage_meta(passages: Sequence[Passage]) -> list[dict[str, Any]]:
    return [{"n": p.n, "source": p.source, "page": p.page, "chunk_ids": [c.id for c in p.chunks]} for p in passages]


def _context_with_gold(hits: list[Hit], gold: StoredChunk, size: int, rng: random.Random) -> tuple[list[Hit], bool]:
    """The retriever's top ``size`` hits with the gold chunk among them (inserted at a random rank if missed)."""
    top = hits[:size]
    if any(h.chunk.id == gold.id for h in top):
        return top, True
    others = [h for h in top if h.chunk.id != gold.id][: size - 1]
    at = rng.randint(0, len(others))
    score = others[at - 1].score if at > 0 else (others[0].score if others else 1.0)
    return [*others[:at], Hit(gold, score), *others[at:]], False


def _context_without_answer(hits: list[Hit], gold: StoredChunk, answers: list[str], size: int) -> list[Hit]:
    """The same ranking with the gold document and every chunk holding the answer taken out."""
    return [
        h for h in hits if h.chunk.content_hash != gold.content_hash and not contains_answer(_shown(h.chunk), answers)
    ][:size]


def _group_split(groups: Iterable[str], share: float, seed: int) -> set[str]:
    """Held-out groups: a stable, seeded choice of ``share`` of them (at least one when there are two)."""
    unique = sorted(set(groups))
    if len(unique) < 2 or share <= 0:
        return set()
    ranked = sorted(unique, key=lambda g: hashlib.sha256(f"{seed}:{g}".encode()).hexdigest())
    count = min(len(unique) - 1, max(1, round(share * len(unique))))
    return set(ranked[:count])


def dedup_key(item: QAItem) -> str:
    return f"{normalize_answer(item.question)}|{(item.source or '').rsplit('/', 1)[-1]}"


def build_examples(
    items: Sequence[QAItem],
    reader: CollectionReader,
    retriever: Any,
    *,
    distractors: int,
    decline_share: float,
    heldout_share: float,
    seed: int,
    merge_adjacent: bool = True,
) -> tuple[list[Example], list[dict[str, str]]]:
    """RAFT examples for ``items`` (deduplicated first-wins), split by group. Returns examples and skips."""
    rng = random.Random(seed)
    size = distractors + 1
    seen: set[str] = set()
    prepared: list[tuple[QAItem, list[Hit], StoredChunk]] = []
    skipped: list[dict[str, str]] = []
    for item in items:
        key = dedup_key(item)
        if key in seen:
            skipped.append({"question": item.question, "reason": "duplicate"})
            continue
        seen.add(key)
        candidates = document_chunks(reader, item.source) if item.source else []
        if item.source and not candidates:
            skipped.append({"question": item.question, "reason": f"source '{item.source}' is not in the collection"})
            continue
        # Deeper than the context so the decline variant still has a full context after removals.
        hits = retriever.search(reader, item.question, top_k=size * 3).hits
        gold = find_gold(item, hits, candidates)
        if gold is None:
            skipped.append({"question": item.question, "reason": "no chunk supports the answer"})
            continue
        prepared.append((item, hits, gold))

    heldout = _group_split((it.group or g.source for it, _, g in prepared), heldout_share, seed)
    # Declines are a share of all examples: d / (n + d) = share.
    n_decline = round(len(prepared) * decline_share / (1 - decline_share)) if decline_share < 1 else len(prepared)
    decline_idx = set(rng.sample(range(len(prepared)), min(n_decline, len(prepared))))
    examples: list[Example] = []
    for i, (item, hits, gold) in enumerate(prepared):
        group = item.group or gold.source
        split = "heldout" if group in heldout else "train"
        context, retrieved = _context_with_gold(hits, gold, size, rng)
        passages = build_passages(context, merge_adjacent)
        gold_n = next(p.n for p in passages if any(c.id == gold.id for c in p.chunks))
        common = {"split": split, "origin": item.origin, "group": group, "question": item.question}
        examples.append(
            Example(
                id=_example_id(item.question, gold.id, "answer"),
                kind="answer",
                answers=item.answers,
                target=cite(item.answer, gold_n),
                messages=build_messages(item.question, passages),
                passages=_passage_meta(passages),
                gold_n=gold_n,
                gold_source=gold.source,
                gold_chunk_id=gold.id,
                gold_retrieved=retrieved,
                **common,
            )
        )
        if i in decline_idx:
            context = _context_without_answer(hits, gold, item.answers, size)
            if not context:
                continue
            passages = build_passages(context, merge_adjacent)
            examples.append(
                Example(
                    id=_example_id(item.question, gold.id, "decline"),
                    kind="decline",
                    answers=item.answers,
                    target=DECLINE_TEXT,
                    messages=build_messages(item.question, passages),
                    passages=_passage_meta(passages),
                    gold_n=None,
                    gold_source=gold.source,
                    gold_chunk_id=gold.id,
                    gold_retrieved=False,
                    **common,
                )
            )
    return examples, skipped


def _example_id(question: str, chunk_id: int, kind: str) -> str:
    return hashlib.sha256(f"{kind}|{chunk_id}|{question}".encode()).hexdigest()[:16]


# -- writing and reading the dataset file -------------------------------------------------------------


def _lines(examples: Sequence[Example]) -> list[str]:
    return [json.dumps(e.as_json(), ensure_ascii=False, sort_keys=True) for e in examples]


def examples_sha256(lines: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.encode("utf-8") + b"\n")
    return digest.hexdigest()


def write_dataset(path: Path, examples: Sequence[Example], header: dict[str, Any]) -> dict[str, Any]:
    """Header line (with the sha256 of the example lines), then the examples; written atomically."""
    lines = _lines(examples)
    counts: dict[str, int] = {}
    for e in examples:
        counts[f"{e.split}_{e.kind}"] = counts.get(f"{e.split}_{e.kind}", 0) + 1
    header = {
        "type": "header",
        "format": FORMAT,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **header,
        "counts": dict(sorted(counts.items())),
        "examples_sha256": examples_sha256(lines),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(header, ensure_ascii=False, sort_keys=True) + "\n")
        for line in lines:
            fh.write(line + "\n")
    tmp.replace(path)
    return header


def load_dataset(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The header and examples of a dataset file; refuses a file whose examples no longer match its hash."""
    if not path.is_file():
        raise DatasetError(f"{path} does not exist: build one with `docqa finetune data --qa FILE --out {path}`")
    with open(path, encoding="utf-8") as fh:
        first = fh.readline()
        try:
            header = json.loads(first)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path} does not start with a docqa dataset header: {exc}") from exc
        if header.get("type") != "header" or header.get("format") != FORMAT:
            raise DatasetError(f"{path} is not a {FORMAT} file; build one with `docqa finetune data`")
        lines = [line.rstrip("\n") for line in fh if line.strip()]
    if examples_sha256(lines) != header["examples_sha256"]:
        raise DatasetError(
            f"{path} was changed after it was built (its examples do not match the recorded sha256); "
            "rebuild it with `docqa finetune data`"
        )
    return header, [json.loads(line) for line in lines]


def dataset_hash(path: Path) -> str:
    """What a trained adapter records as its data: the sha256 of the whole dataset file."""
    return sha256_file(path)


# -- the whole build ----------------------------------------------------------------------------------


def build_dataset(
    services: Any,
    collection: str,
    out: Path,
    *,
    qa: Path | None = None,
    feedback: Path | None = None,
    synthetic: int = 0,
    model: str | None = None,
) -> BuildReport:
    """Read every input, add synthetic pairs if asked, compose RAFT examples and write ``out``."""
    if not (qa or feedback or synthetic):
        raise DatasetError("nothing to build from: pass --qa FILE, --feedback FILE or --synthetic N")
    settings = services.settings
    ft = settings.finetune
    reader = services.reader(collection)
    items: list[QAItem] = []
    inputs: list[dict[str, Any]] = []
    if qa:
        qa_items = read_qa(qa)
        items.extend(qa_items)
        inputs.append({"kind": "qa", "path": str(qa.resolve()), "sha256": sha256_file(qa), "items": len(qa_items)})
    if feedback:
        fb_items, ignored = read_feedback(feedback)
        items.extend(fb_items)
        inputs.append(
            {
                "kind": "feedback",
                "path": str(feedback.resolve()),
                "sha256": sha256_file(feedback),
                "items": len(fb_items),
                "ignored_not_up": ignored,
            }
        )
    if synthetic:
        syn = synthesize(services, collection, synthetic, model=model, seed=ft.seed)
        items.extend(syn.items)
        inputs.append({"kind": "synthetic", "model": syn.model, **syn.stats})
    examples, skipped = build_examples(
        items,
        reader,
        services.retriever,
        distractors=ft.distractors,
        decline_share=ft.decline_share,
        heldout_share=ft.heldout_share,
        seed=ft.seed,
        merge_adjacent=settings.retrieval.merge_adjacent,
    )
    if not examples:
        reasons = sorted({s["reason"] for s in skipped})
        raise DatasetError(f"no usable example (skipped: {'; '.join(reasons) or 'none given'}); check the sources")
    header = write_dataset(
        out,
        examples,
        {
            "collection": collection,
            "collection_generation": reader.generation,
            "embedder": reader.model,
            "inputs": inputs,
            "retrieval": settings.retrieval.model_dump(),
            "raft": {
                "distractors": ft.distractors,
                "decline_share": ft.decline_share,
                "heldout_share": ft.heldout_share,
                "seed": ft.seed,
            },
            "skipped": len(skipped),
        },
    )
    return BuildReport(examples, skipped, header)
