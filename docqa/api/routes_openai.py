"""An OpenAI-compatible ``POST /v1/chat/completions`` (and ``GET /v1/models``), so any OpenAI client can
use docqa as a grounded model: ``model`` names the collection (``support``, or ``support:ADAPTER`` for a
registered LoRA adapter), earlier messages are the conversation, the last user message is the question.
Sources travel in an extra ``docqa`` field (in the last chunk when streaming)."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from docqa.api.answering import AnswerRequest, answer_blocking, follow, prepare, start_stream
from docqa.api.auth import AnyKey
from docqa.api.errors import ApiError, describe, error_body
from docqa.api.routes_answer import ERRORS
from docqa.api.schemas import ChatCompletionRequest
from docqa.api.state import ApiState, get_state
from docqa.api.streaming import SSE_HEADERS, SSE_KEEPALIVE, PipelineRun, citation_json, evidence_json, sse
from rag.errors import DocqaError
from rag.types import Answer

router = APIRouter(prefix="/v1", tags=["openai-compatible"])


def split_model(model: str) -> tuple[str, str | None]:
    """``collection`` or ``collection:adapter`` (collection names cannot contain ':')."""
    collection, _, adapter = model.partition(":")
    return collection, adapter or None


def _conversation(body: ChatCompletionRequest) -> tuple[str, list[dict[str, str]]]:
    turns = [{"role": m.role, "content": m.text()} for m in body.messages if m.role in ("user", "assistant")]
    if not turns or turns[-1]["role"] != "user":
        raise ApiError(422, "messages: the last message must be the user's question", field="messages")
    return turns[-1]["content"], turns[:-1]


def _docqa_field(req: AnswerRequest, answer: Answer) -> dict[str, Any]:
    return {
        "collection": req.collection,
        "citations": [citation_json(c, public=req.public) for c in answer.citations],
        "evidence": [evidence_json(e, public=req.public) for e in answer.evidence],
        "grounded": answer.grounded,
        "mode": answer.mode,
        "retrieval_ms": round(answer.retrieval_ms, 1),
        "generation_ms": round(answer.generation_ms, 1),
        "declined": answer.declined,
    }


@router.get("/models")
def models(request: Request, key: AnyKey) -> dict[str, Any]:
    """The collections this key may ask, as OpenAI model ids (what `client.models.list()` shows)."""
    state = get_state(request)
    data = [
        {"id": c.name, "object": "model", "created": int(c.committed_at), "owned_by": "docqa"}
        for c in state.services.collections()
        if key.can_use(c.name)
    ]
    return {"object": "list", "data": data}


@router.post("/chat/completions", responses=ERRORS)
async def chat_completions(body: ChatCompletionRequest, request: Request, key: AnyKey):
    """OpenAI chat completions over a collection: `model` is the collection (or `collection:adapter`).

    Example (Python): `OpenAI(base_url="http://127.0.0.1:8080/v1", api_key=KEY).chat.completions.create(
    model="support", messages=[{"role": "user", "content": "How long is the warranty?"}])`;
    the sources are in `response.model_extra["docqa"]["citations"]`.
    """
    state = get_state(request)
    collection, adapter = split_model(body.model)
    question, history = _conversation(body)
    req = await run_in_threadpool(
        prepare,
        state,
        key,
        question=question,
        collection=collection,
        history=history,
        model=adapter,
        keep_conversation=False,
    )
    completion_id = f"chatcmpl-{secrets.token_hex(12)}"
    created = int(time.time())
    if not body.stream:
        answer, _ = await run_in_threadpool(answer_blocking, state, req)
        return {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": body.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": answer.answer or ""},
                    "finish_reason": "stop",
                }
            ],
            "docqa": _docqa_field(req, answer),
        }
    try:
        run, head = await start_stream(state, req)
    except DocqaError:
        state.metrics.answers.labels("error").inc()
        raise
    return StreamingResponse(
        _chunks(state, req, run, head, completion_id, created, body.model),
        media_type="text/event-stream",
        headers=SSE_HEADERS,
    )


async def _chunks(
    state: ApiState, req: AnswerRequest, run: PipelineRun, head: list[dict], cid: str, created: int, model: str
) -> AsyncIterator[bytes]:
    def chunk(delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> bytes:
        data = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            **extra,
        }
        return sse(None, data)

    yield chunk({"role": "assistant", "content": ""})
    async with aclosing(follow(state, req, run, head)) as events:
        async for event in events:
            kind = event["event"]
            if kind == "token":
                yield chunk({"content": event["text"]})
            elif kind == "final":
                yield chunk({}, "stop", docqa=_docqa_field(req, event["answer"]))
            elif kind == "keepalive":
                yield SSE_KEEPALIVE
            elif kind == "error":
                yield sse(None, error_body(*describe(event["error"], detailed=not req.public)))
    yield b"data: [DONE]\n\n"
