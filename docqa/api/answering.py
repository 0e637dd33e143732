"""What the answer routes share: limits, conversations, adapter names, the passages-only fallback, and
starting a pipeline run whose failure to reach the model still becomes a proper HTTP status."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastapi.concurrency import run_in_threadpool

from docqa.api.auth import authorize_collection
from docqa.api.conversations import Conversation
from docqa.api.errors import ApiError, describe
from docqa.api.keys import ApiKey
from docqa.api.state import ApiState
from docqa.api.streaming import KEEPALIVE_S, PipelineRun
from rag.errors import DocqaError, ModelServerError
from rag.types import Answer, Question


@dataclass
class AnswerRequest:
    """A validated question (what the pipeline answers) and who asks it, in which conversation."""

    key: ApiKey
    question: Question
    conversation: Conversation | None
    allow_passages_only: bool = False
    started: float = 0.0

    @property
    def collection(self) -> str:
        return self.question.collection

    @property
    def public(self) -> bool:
        """Widget keys see file names, not server paths."""
        return self.key.scope == "widget"


def check_question(state: ApiState, question: str) -> str:
    question = question.strip()
    limit = state.settings.api.max_question_chars
    if not question:
        raise ApiError(422, "question: must not be empty", field="question")
    if len(question) > limit:
        raise ApiError(
            422,
            f"question: {len(question)} characters is over the limit of {limit} (DOCQA_API_MAX_QUESTION_CHARS)",
            field="question",
        )
    return question


def check_top_k(state: ApiState, top_k: int | None) -> int | None:
    limit = state.settings.api.max_top_k
    if top_k is not None and top_k > limit:
        # Worded as the schema's own limits are (it was one before it became a setting).
        raise ApiError(422, f"top_k: Input should be less than or equal to {limit}", field="top_k")
    return top_k


def check_history(state: ApiState, history: Sequence[dict[str, str]], field: str = "history") -> None:
    limit = state.settings.api.max_history_turns
    turns = sum(1 for t in history if t["role"] == "user")
    if turns >= limit:
        raise ApiError(
            422,
            f"{field}: the conversation has {turns} turns; the limit is {limit} (DOCQA_API_MAX_HISTORY_TURNS). "
            "Start a new conversation.",
            field=field,
        )


def resolve_model(state: ApiState, model: str | None) -> str | None:
    """A model the server publishes (the base model or a registered LoRA adapter, or the one adapter served
    merged into the base weights, alone); anything else is refused before reaching the server."""
    if model is None:
        return model
    served = state.services.pipeline.served_models()
    if not served:  # the server does not answer now: the names it would publish, as registered
        from rag.adapters import registered_adapters

        served = {state.settings.llm_model_name, *registered_adapters(state.settings)}
    if model not in served:
        names = ", ".join(sorted(served))
        raise ApiError(404, f"model '{model}' is not served; available: {names}", type="model_not_found", field="model")
    return model


def prepare(
    state: ApiState,
    key: ApiKey,
    *,
    question: str,
    collection: str,
    conversation_id: str | None = None,
    history: Sequence[dict[str, str]] | None = None,
    model: str | None = None,
    top_k: int | None = None,
    allow_passages_only: bool = False,
    keep_conversation: bool = True,
) -> AnswerRequest:
    started = time.perf_counter()
    top_k = check_top_k(state, top_k)
    name = authorize_collection(state, key, collection)
    question = check_question(state, question)
    if conversation_id and history:
        raise ApiError(422, "give either conversation_id or history, not both", field="history")
    conversation = None
    turns: list[dict[str, str]] = [dict(t) for t in history or ()]
    if conversation_id:
        conversation = state.conversations.get(conversation_id, key.id, name)
        if conversation is None:
            raise ApiError(
                404,
                "conversation_id: unknown or expired conversation; leave it out to start a new one",
                type="conversation_not_found",
                field="conversation_id",
            )
        turns = list(conversation.history)
    check_history(state, turns)
    if conversation is None and keep_conversation:
        conversation = state.conversations.start(key.id, name, turns)
    asked = Question(question, name, history=turns, top_k=top_k, model=resolve_model(state, model))
    return AnswerRequest(key, asked, conversation, allow_passages_only, started)


def model_error(req: AnswerRequest, exc: DocqaError) -> str:
    """Why there is no answer, as this caller may read it (no server addresses for widget keys)."""
    return describe(exc, detailed=not req.public)[2]


def passages_only(state: ApiState, req: AnswerRequest) -> Answer:
    return state.services.pipeline.passages_only(req.question)


def answer_blocking(state: ApiState, req: AnswerRequest) -> tuple[Answer, str | None]:
    """Run the pipeline to the end (in a worker thread); returns the answer and, when the model was
    down and the caller allowed it, the reason there is only passages."""
    try:
        pieces = PieceCount(state, req)
        final: Answer | None = None
        for event in state.services.pipeline.stream(req.question):
            pieces.count(event)
            if event["event"] == "final":
                final = event["answer"]
        assert final is not None, "the pipeline ended without a final event"
    except ModelServerError as exc:
        if not req.allow_passages_only:
            state.metrics.answers.labels("error").inc()
            raise
        answer = passages_only(state, req)
        state.metrics.observe_answer(answer)
        return answer, model_error(req, exc)
    finish(state, req, final, pieces.tokens)
    return final, None


class PieceCount:
    """Counts an answer's pieces as its events pass, for the metrics of both the blocking and the
    streaming routes: ``shown`` (sent to the client; the first one times the first token) and
    ``drafted`` (generated and held back until checked, verify mode)."""

    def __init__(self, state: ApiState, req: AnswerRequest) -> None:
        self.state, self.req = state, req
        self.shown = self.drafted = 0

    def count(self, event: dict[str, Any]) -> None:
        if event["event"] == "token":
            if self.shown == 0:
                self.state.metrics.first_token.observe(time.perf_counter() - self.req.started)
            self.shown += 1
        elif event["event"] == "progress":
            self.drafted += 1

    @property
    def tokens(self) -> int:
        """The model's pieces: the drafted ones where the answer was held back, else those shown."""
        return self.drafted or self.shown


def finish(state: ApiState, req: AnswerRequest, answer: Answer, tokens: int) -> None:
    """Book-keeping once an answer is complete: metrics and the conversation's new turn."""
    state.metrics.observe_answer(answer, tokens)
    if req.conversation is not None and answer.answer is not None:
        state.conversations.append(req.conversation, req.question.text, answer.answer)


async def start_stream(state: ApiState, req: AnswerRequest) -> tuple[PipelineRun, list[dict[str, Any]]]:
    """Start the pipeline and read ahead to its sources (or its end), so that an unreachable model server
    or an unknown collection is still an HTTP status and not an event inside a 200 stream.

    The model server is checked (one quick request) while retrieval runs, and the stream starts once the
    sources are found: reading ahead to the model's first token instead held the sources back until the
    prompt was read, seconds on a busy CPU, while the user saw nothing."""
    asks_model = state.settings.answer.mode != "quote"
    check = asyncio.ensure_future(run_in_threadpool(state.services.generator.check)) if asks_model else None
    run = PipelineRun(state.services.pipeline.stream(req.question)).start()
    head: list[dict[str, Any]] = []
    try:
        while True:
            event = await run.next_event()
            if event is None:
                break
            head.append(event)
            if event["event"] in ("sources", "token", "progress", "final"):  # past retrieval
                break
        if check is not None and head and head[-1]["event"] == "sources" and head[-1]["passages"]:
            await check  # the model will be asked: a stopped server is a 503 here
    except BaseException:
        run.cancel()
        raise
    finally:
        if check is not None:  # unread where not needed (a decline): asyncio must not log its failure
            check.add_done_callback(_ignore_outcome)
    return run, head


def _ignore_outcome(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


async def follow(state: ApiState, req: AnswerRequest, run: PipelineRun, head: list[dict[str, Any]]):
    """The events of a started run for a streaming route to format: the read-ahead ones, then the rest;
    ``{"event": "keepalive"}`` during long silences and ``{"event": "error", "error": DocqaError}`` if
    the pipeline fails midway, or, when the model server fails and the request allows it, a ``final``
    with the passages only and its ``model_error`` (as /v1/ask answers). Metrics, the conversation turn
    and stopping the run are handled here."""
    state.metrics.active_streams.inc()
    pieces = PieceCount(state, req)
    complete = False  # reached the final event, an error, or the end: anything else is a cancel
    try:
        pending = head
        while True:
            for event in pending:
                pieces.count(event)
                if event["event"] == "progress":
                    continue  # nothing to send: the draft is held back until checked
                if event["event"] == "final":
                    complete = True
                    pieces.drafted = run.drafted  # every progress event, the ones it did not hand over too
                    # The conversation's new turn is a database write: off the event loop, which serves
                    # every other stream and /healthz meanwhile.
                    await run_in_threadpool(finish, state, req, event["answer"], pieces.tokens)
                yield event
                if complete:
                    return
            if run.finished:
                complete = True
                return
            try:
                event = await run.next_event(timeout=KEEPALIVE_S)
            except TimeoutError:
                pending = [{"event": "keepalive"}]
                continue
            except DocqaError as exc:
                complete = True
                if isinstance(exc, ModelServerError) and req.allow_passages_only:
                    answer = await run_in_threadpool(passages_only, state, req)
                    state.metrics.observe_answer(answer)
                    yield {"event": "final", "answer": answer, "model_error": model_error(req, exc)}
                    return
                state.metrics.answers.labels("error").inc()
                yield {"event": "error", "error": exc}
                return
            if event is None:
                complete = True
                return
            pending = [event]
    finally:
        if not complete:
            state.metrics.cancelled_streams.inc()
        run.cancel()  # a client that went away stops the generation at the next token
        state.metrics.active_streams.dec()
