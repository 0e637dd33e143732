"""``POST /v1/ask`` (one JSON answer) and ``POST /v1/chat`` (the same answer streamed as server-sent
events, with a conversation id for follow-ups)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from docqa.api.answering import (
    AnswerRequest,
    answer_blocking,
    follow,
    model_error,
    passages_only,
    prepare,
    start_stream,
)
from docqa.api.auth import AnyKey
from docqa.api.errors import describe, error_body
from docqa.api.keys import ApiKey
from docqa.api.schemas import AskRequest, AskResponse, ChatRequest
from docqa.api.state import ApiState, get_state
from docqa.api.streaming import SSE_HEADERS, SSE_KEEPALIVE, PipelineRun, answer_json, citation_json, sse
from rag.errors import ModelServerError
from rag.types import Answer

router = APIRouter(prefix="/v1", tags=["answers"])

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing, invalid or revoked key."},
    403: {"description": "The key may not use this collection, or not from this origin."},
    404: {"description": "Unknown collection, conversation or model."},
    422: {"description": "Invalid body, or a question or conversation over its limit (the message says which)."},
    429: {"description": "Rate limit reached; see Retry-After."},
    503: {"description": "The model server is unreachable (unless allow_passages_only)."},
}


def _prepare(state: ApiState, key: ApiKey, body: AskRequest) -> AnswerRequest:
    """Key, collection, conversation and limits checked; the one place both routes read a request body."""
    return prepare(
        state,
        key,
        question=body.question,
        collection=body.collection,
        conversation_id=body.conversation_id,
        history=[t.model_dump() for t in body.history or ()],
        model=body.model,
        top_k=body.top_k,
        allow_passages_only=body.allow_passages_only,
    )


def _response(req: AnswerRequest, answer: Answer, model_error: str | None) -> dict[str, Any]:
    body = answer_json(answer, public=req.public)
    body.update(
        conversation_id=req.conversation.id if req.conversation else None,
        collection=req.collection,
        model_error=model_error,
    )
    return body


@router.post("/ask", response_model=AskResponse, responses=ERRORS)
def ask(body: AskRequest, request: Request, key: AnyKey) -> dict[str, Any]:
    """Answer a question from a collection, citing file and page (the shape of `docqa ask --json`).

    Follow-ups: pass the `conversation_id` of the previous answer. With `allow_passages_only`, a down
    model server gives `answer: null` and the relevant passages instead of 503.

    Example: `curl -H "Authorization: Bearer $KEY" -H "Content-Type: application/json"
    -d '{"question": "How long is the warranty?", "collection": "support"}' http://127.0.0.1:8080/v1/ask`
    """
    state = get_state(request)
    req = _prepare(state, key, body)
    answer, model_error = answer_blocking(state, req)
    return _response(req, answer, model_error)


async def _events(state: ApiState, req: AnswerRequest, run: PipelineRun, head: list[dict]) -> AsyncIterator[bytes]:
    """SSE: ``meta`` (conversation id), ``sources``, ``token``..., then ``final`` (the full answer with
    citations and timings), or ``error`` if the model fails mid-answer (with ``allow_passages_only``, a
    ``final`` with the passages instead)."""
    yield _meta(req)
    async with aclosing(follow(state, req, run, head)) as events:
        async for event in events:
            kind = event["event"]
            if kind == "sources":
                # checking: the answer is held back until verified (it comes whole, later): a client shows
                # the passages and that it is checking, rather than nothing, meanwhile.
                checking = state.settings.answer.mode == "verify" and bool(event["passages"])
                citations = [citation_json(c, public=req.public) for c in event["passages"]]
                yield sse("sources", {"citations": citations, "checking": checking})
            elif kind == "token":
                yield sse("token", {"text": event["text"]})
            elif kind == "final":
                yield sse("final", _response(req, event["answer"], event.get("model_error")))
            elif kind == "keepalive":
                yield SSE_KEEPALIVE
            elif kind == "error":
                yield sse("error", error_body(*describe(event["error"], detailed=not req.public)))


def _meta(req: AnswerRequest) -> bytes:
    return sse(
        "meta", {"conversation_id": req.conversation.id if req.conversation else None, "collection": req.collection}
    )


async def _passages_events(req: AnswerRequest, answer: Answer, model_error: str) -> AsyncIterator[bytes]:
    yield _meta(req)
    yield sse("sources", {"citations": [citation_json(c, public=req.public) for c in answer.citations]})
    yield sse("final", _response(req, answer, model_error))


@router.post(
    "/chat",
    responses={**ERRORS, 200: {"content": {"text/event-stream": {}}, "description": "Server-sent events."}},
)
async def chat(body: ChatRequest, request: Request, key: AnyKey) -> StreamingResponse:
    """Stream an answer as server-sent events: `meta` ({conversation_id, collection}), `sources`
    ({citations, checking}: checking is true when the answer is held back until verified, so it comes whole
    and later), `token` ({text}) for each piece, then `final` (the /v1/ask body); `error` if the
    model fails midway. Send the `conversation_id` back with the next question for a follow-up.

    Example: `curl -N -H "Authorization: Bearer $KEY" -H "Content-Type: application/json"
    -d '{"question": "How do I reset it?", "collection": "support"}' http://127.0.0.1:8080/v1/chat`
    """
    state = get_state(request)
    req = await run_in_threadpool(_prepare, state, key, body)
    try:
        run, head = await start_stream(state, req)
    except ModelServerError as exc:
        if not req.allow_passages_only:
            state.metrics.answers.labels("error").inc()
            raise
        answer = await run_in_threadpool(passages_only, state, req)
        state.metrics.observe_answer(answer)
        return StreamingResponse(
            _passages_events(req, answer, model_error(req, exc)), media_type="text/event-stream", headers=SSE_HEADERS
        )
    return StreamingResponse(_events(state, req, run, head), media_type="text/event-stream", headers=SSE_HEADERS)
