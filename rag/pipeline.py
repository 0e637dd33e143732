"""The answer pipeline: condense a follow-up, retrieve, decline or prompt, stream, map citations.

``stream()`` yields events (the CLI, the SSE endpoint and the UI all consume the same ones):
``{"event": "sources", "passages": [Citation]}`` once retrieval is done, ``{"event": "token",
"text": str}`` for each generated piece, and ``{"event": "final", "answer": Answer}`` last.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from rag.errors import DocqaError
from rag.prompting import (
    DECLINE_TEXT,
    build_messages,
    build_passages,
    condense_messages,
    fit_passages,
    is_decline,
    map_citations,
    sane_rewrite,
)
from rag.retrieval import Retrieval
from rag.store import Filters
from rag.types import Answer

if TYPE_CHECKING:
    from rag.services import Services

log = logging.getLogger(__name__)

PROMPT_OVERHEAD_TOKENS = 160  # system prompt, chat template and question framing


class AnswerPipeline:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.settings = services.settings

    @cached_property
    def count_tokens(self) -> Callable[[str], int]:
        """Token counter of the chat model, so the context fits its window; an estimate when the
        configured model's tokenizer is not available locally (a remote endpoint)."""
        from rag.generation import load_chat_tokenizer

        try:
            tokenizer = load_chat_tokenizer(self.settings)
        except DocqaError as exc:
            log.warning("chat tokenizer unavailable (%s); estimating 1 token per 3.5 characters", exc)
            return lambda text: int(len(text) / 3.5) + 1
        return lambda text: len(tokenizer.encode(text, add_special_tokens=False))

    def standalone_question(self, question: str, history: Sequence[dict], model: str | None = None) -> str:
        if not any(t["role"] == "user" for t in history):
            return question
        rewrite = self.services.generator.chat(
            condense_messages(history[-6:], question), model=model, max_tokens=64, temperature=0.0
        )
        return sane_rewrite(rewrite, question, history)

    def retrieve(
        self,
        question: str,
        *,
        collection: str,
        filters: Filters | None = None,
        top_k: int | None = None,
        rerank: bool | None = None,
    ) -> Retrieval:
        reader = self.services.reader(collection)
        return self.services.retriever.search(reader, question, top_k=top_k, filters=filters, rerank=rerank)

    def stream(
        self,
        question: str,
        *,
        collection: str,
        history: Sequence[dict] = (),
        filters: Filters | None = None,
        top_k: int | None = None,
        rerank: bool | None = None,
        model: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        s = self.settings
        model = model or self.settings.llm_model_name
        t0 = time.perf_counter()
        self.services.reader(collection)  # fail fast on an unknown collection, before the model is asked
        standalone = self.standalone_question(question, history, model)
        retrieval = self.retrieve(standalone, collection=collection, filters=filters, top_k=top_k, rerank=rerank)
        passages = build_passages(retrieval.hits, s.retrieval.merge_adjacent)
        retrieval_ms = (time.perf_counter() - t0) * 1000

        if not passages or retrieval.best_dense < s.retrieval.min_dense_score:
            # Nothing relevant enough: say so rather than let the model improvise.
            yield {"event": "sources", "passages": []}
            yield {"event": "token", "text": DECLINE_TEXT}
            yield {
                "event": "final",
                "answer": Answer(DECLINE_TEXT, [], retrieval_ms, 0.0, True, 0, model, standalone, []),
            }
            return

        budget = s.llm.context_window - s.llm.max_tokens - PROMPT_OVERHEAD_TOKENS
        budget -= sum(self.count_tokens(t["content"]) for t in history[-6:]) + self.count_tokens(question)
        passages = fit_passages(passages, self.count_tokens, max(budget, 128))
        yield {"event": "sources", "passages": [p.citation() for p in passages]}

        t1 = time.perf_counter()
        pieces: list[str] = []
        for piece in self.services.generator.stream(
            build_messages(question, passages, history[-6:]), model=model, max_tokens=s.llm.max_tokens
        ):
            pieces.append(piece)
            yield {"event": "token", "text": piece}
        generation_ms = (time.perf_counter() - t1) * 1000
        raw = "".join(pieces).strip()
        text, citations, dropped = map_citations(raw, passages)
        declined = is_decline(text) and not citations
        answer = Answer(
            answer=text,
            citations=citations,
            retrieval_ms=retrieval_ms,
            generation_ms=generation_ms,
            declined=declined,
            dropped_markers=dropped,
            model=model,
            standalone_question=standalone,
            passages=[p.citation() for p in passages],
        )
        yield {"event": "final", "answer": answer}

    def ask(self, question: str, **kwargs: Any) -> Answer:
        final = None
        for event in self.stream(question, **kwargs):
            if event["event"] == "final":
                final = event["answer"]
        assert final is not None
        return final

    def passages_only(
        self,
        question: str,
        *,
        collection: str,
        history: Sequence[dict] = (),
        filters: Filters | None = None,
        top_k: int | None = None,
        rerank: bool | None = None,
    ) -> Answer:
        """Retrieval without the model (for when it is down): ``answer`` is None, ``citations`` the passages."""
        t0 = time.perf_counter()
        query = sane_rewrite("", question, history) if history else question
        retrieval = self.retrieve(query, collection=collection, filters=filters, top_k=top_k, rerank=rerank)
        passages = build_passages(retrieval.hits, self.settings.retrieval.merge_adjacent)
        cites = [p.citation() for p in passages]
        return Answer(None, cites, (time.perf_counter() - t0) * 1000, 0.0, False, 0, None, query, cites)
