"""Synthetic Q/A pairs: the served model writes a question and a short answer for sampled chunks.

Small models write many unusable pairs, so each is kept only when it passes cheap checks (a real
question, an answer copied from the chunk) and the retriever finds the source chunk again in the
top-k for that question: a pair the retriever cannot answer would teach the model nothing useful.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any

from finetune.items import QAItem
from rag.evaluation.metrics import contains_answer
from rag.types import Filters, StoredChunk

PROMPT = (
    "Read the passage and write one question that it answers, and the answer copied from the passage.\n\n"
    "Passage:\n{text}\n\n"
    "Reply in exactly two lines:\nQuestion: <the question>\nAnswer: <a short answer from the passage>"
)
ATTEMPTS_PER_PAIR = 4  # chunks tried per wanted pair before giving up
MAX_ANSWER_WORDS = 25
_PAIR = re.compile(r"question\s*:\s*(?P<q>.+?)\s*\n+\s*answer\s*:\s*(?P<a>.+)", re.IGNORECASE | re.DOTALL)


@dataclass
class SyntheticResult:
    items: list[QAItem]
    model: str
    stats: dict[str, int] = field(default_factory=dict)


def parse_pair(reply: str) -> tuple[str, str] | None:
    """``Question: ...`` / ``Answer: ...`` from a reply, or None when it is not in that shape."""
    match = _PAIR.search(reply)
    if not match:
        return None
    question = match.group("q").strip().splitlines()[0].strip()
    answer = match.group("a").strip().splitlines()[0].strip().strip('"')
    if len(question.split()) < 3 or not question.endswith("?") or not answer:
        return None
    if len(answer.split()) > MAX_ANSWER_WORDS:
        return None
    return question, answer


def writer_model(services: Any) -> str:
    """Who writes the pairs by default: the base model where the server publishes it (the grounded adapter was
    taught to answer, not to ask), else what it does publish (one adapter merged in: only that adapter)."""
    base = services.settings.llm_model_name
    served = services.pipeline.served_models()
    return base if not served or base in served else services.pipeline.default_model()


def synthesize(services: Any, collection: str, n: int, *, model: str | None = None, seed: int = 0) -> SyntheticResult:
    """Up to ``n`` answerable pairs from random chunks of ``collection``; stats say what was rejected. ``model``
    None: ``writer_model``."""
    model = model or writer_model(services)
    reader = services.reader(collection)
    all_ids = reader.chunk_ids(Filters(source_glob="*")).tolist()
    rng = random.Random(seed)
    order = rng.sample(all_ids, min(len(all_ids), n * ATTEMPTS_PER_PAIR))
    stats = {"asked": 0, "unparsed": 0, "not_extractive": 0, "not_retrieved": 0, "kept": 0}
    items: list[QAItem] = []
    for chunk_id in order:
        if len(items) >= n:
            break
        chunk: StoredChunk = reader.chunks([chunk_id])[chunk_id]
        stats["asked"] += 1
        reply = services.generator.chat(
            [{"role": "user", "content": PROMPT.format(text=chunk.text)}], model=model, max_tokens=96, temperature=0.0
        )
        pair = parse_pair(reply)
        if pair is None:
            stats["unparsed"] += 1
            continue
        question, answer = pair
        if not contains_answer(chunk.text, [answer]):
            stats["not_extractive"] += 1
            continue
        hits = services.retriever.search(reader, question).hits
        if chunk_id not in {h.chunk.id for h in hits}:
            stats["not_retrieved"] += 1
            continue
        stats["kept"] += 1
        items.append(
            QAItem(question, answer, source=chunk.source, page=chunk.page, origin="synthetic", gold_text=chunk.text)
        )
    return SyntheticResult(items, model, stats)
