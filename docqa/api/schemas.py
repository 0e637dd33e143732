"""Request and response bodies, with the examples the OpenAPI page shows."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from docqa.api.errors import printable

_SURROGATE = re.compile("[\ud800-\udfff]")


def lone_surrogate_at(value: Any, path: str = "") -> str | None:
    """Dotted path of the first key or string holding a lone UTF-16 surrogate, else None. JSON's
    ``"\\ud800"`` escape decodes to one; it is not Unicode text and cannot be encoded, so it must stop
    here rather than reach the tokenizer or an error message."""
    if isinstance(value, str):
        return path if _SURROGATE.search(value) else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        where = f"{path}.{key}" if path else str(key)
        if isinstance(key, str) and _SURROGATE.search(key):
            return where
        found = lone_surrogate_at(item, where)
        if found is not None:
            return found
    return None


class RequestBody(BaseModel):
    """A request body whose every string, extras included, is checked to be valid Unicode."""

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        where = lone_surrogate_at(data)
        if where is not None:
            raise PydanticCustomError(
                "lone_surrogate",
                "contains a lone UTF-16 surrogate, which is not valid Unicode; send text encoded as UTF-8",
                {"field": printable(where)},  # pydantic cannot render an error holding a surrogate
            )
        return data


class Turn(BaseModel):
    role: Literal["user", "assistant"]
    content: str


class AskRequest(RequestBody):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"question": "How long is the warranty on the X200?", "collection": "support"},
                {
                    "question": "And for refurbished units?",
                    "collection": "support",
                    "conversation_id": "Jt3v0mJ0m8xQ9Vb3mJr7uA",
                    "allow_passages_only": True,
                },
            ]
        },
    )

    question: str = Field(..., min_length=1, description="The question (at most api.max_question_chars).")
    collection: str = Field(..., description="Collection to answer from.", examples=["support"])
    conversation_id: str | None = Field(
        None, description="Continue a conversation: the id a previous answer returned (follow-ups use it)."
    )
    history: list[Turn] | None = Field(
        None, description="Earlier turns, when the client keeps the conversation itself (instead of an id)."
    )
    top_k: int | None = Field(
        None, ge=1, description="Passages given to the model (default: settings; at most api.max_top_k, 50)."
    )
    model: str | None = Field(None, description="Served model or LoRA adapter name (default: the base model).")
    allow_passages_only: bool = Field(
        False,
        description="When the model server is down, answer 200 with answer=null and the relevant passages "
        "as citations instead of 503.",
    )


class ChatRequest(AskRequest):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"question": "How do I reset the router?", "collection": "support"},
                {"question": "What if that does not work?", "collection": "support", "conversation_id": "…"},
            ]
        },
    )


class CitationOut(BaseModel):
    n: int
    source: str = Field(..., description="Document path (staff keys) or file name (widget keys).")
    page: int | None
    text: str
    score: float
    heading: str | None = None
    chunk_id: int | None = None
    page_label: str | None = Field(None, description="The page number printed on the page, where it differs.")


class EvidenceOut(BaseModel):
    n: int = Field(..., description="The citation number of the passage the span lies in.")
    source: str = Field(..., description="Document path (staff keys) or file name (widget keys).")
    page: int | None
    chunk_id: int
    start: int = Field(..., description="Character offset of the span in the stored text of chunk chunk_id.")
    end: int = Field(..., description="End offset (exclusive) of the span in that chunk's text.")
    text: str
    score: float
    lead: str | None = Field(
        None,
        description="The sentence or caption introducing the list or table this item or row belongs to; a quote "
        "shows it before the text (rag/units.py).",
    )


class ModelCallOut(BaseModel):
    purpose: Literal["condense", "draft", "alternatives", "sentence_draft"] = Field(
        ..., description="What the call was for: rewriting a follow-up, the draft, the model's other starts, "
        "the draft from the quoted sentence alone."
    )
    prompt_tokens: int | None = Field(None, description="As the model server counted them (null: not reported).")
    generated_tokens: int | None = None
    first_token_ms: float | None = Field(None, description="Call start to its first token (null: not streamed).")
    total_ms: float | None = None


class TimingsOut(BaseModel):
    retrieval_ms: float = Field(..., description="Search and evidence ranking (a follow-up's rewrite apart).")
    verification_ms: float = Field(..., description="After retrieval and outside model calls: checking the drafts.")
    total_ms: float
    model_calls: list[ModelCallOut] = Field(default_factory=list)


class AskResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "answer": "The X200 has a 24-month warranty [1].",
                    "citations": [
                        {
                            "n": 1,
                            "source": "warranty.pdf",
                            "page": 2,
                            "text": "All X200 units carry a 24-month limited warranty…",
                            "score": 0.82,
                            "heading": "Warranty",
                            "chunk_id": 17,
                        }
                    ],
                    "evidence": [
                        {
                            "n": 1,
                            "source": "warranty.pdf",
                            "page": 2,
                            "chunk_id": 17,
                            "start": 0,
                            "end": 52,
                            "text": "All X200 units carry a 24-month limited warranty.",
                            "score": 0.91,
                        }
                    ],
                    "grounded": True,
                    "mode": "generate",
                    "answerable": 0.97,
                    "retrieval_ms": 41.3,
                    "generation_ms": 1830.0,
                    "timings": {
                        "retrieval_ms": 41.3,
                        "verification_ms": 22.5,
                        "total_ms": 1871.3,
                        "model_calls": [
                            {
                                "purpose": "draft",
                                "prompt_tokens": 612,
                                "generated_tokens": 14,
                                "first_token_ms": 420.2,
                                "total_ms": 1807.5,
                            }
                        ],
                    },
                    "declined": False,
                    "dropped_markers": 0,
                    "model": "docqa-base",
                    "conversation_id": "Jt3v0mJ0m8xQ9Vb3mJr7uA",
                    "collection": "support",
                    "model_error": None,
                }
            ]
        }
    )

    answer: str | None = Field(..., description="null when only passages could be returned (model down).")
    citations: list[CitationOut]
    evidence: list[EvidenceOut] = Field(
        default_factory=list, description="The sentences that support the answer, best first, with offsets."
    )
    grounded: bool | None = Field(
        None, description="Every claim of the model's answer is backed by its cited passage (null: not checked)."
    )
    mode: Literal["generate", "quote"] = Field(
        "generate", description="'quote': the answer is the evidence quoted (the model's own was not supported)."
    )
    answerable: float | None = Field(None, description="How likely the documents hold the answer (0-1).")
    retrieval_ms: float
    generation_ms: float
    load_ms: float = Field(0.0, description="Loading models for this process's first question (not retrieval).")
    timings: TimingsOut | None = Field(
        None, description="Where the answer's time went, by stage and model call (null: passages only)."
    )
    declined: bool = False
    dropped_markers: int = 0
    model: str | None = None
    conversation_id: str
    collection: str
    model_error: str | None = Field(None, description="Why there is no answer, when answer is null.")


class OpenAIMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
        return self.content or ""


class ChatCompletionRequest(RequestBody):
    """OpenAI's chat completion request. ``model`` names the collection (``collection`` or
    ``collection:adapter``); sampling parameters are accepted and ignored (answers are grounded and
    deterministic); system messages are ignored (docqa's own rules apply)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "model": "support",
                    "messages": [{"role": "user", "content": "How long is the warranty on the X200?"}],
                },
                {
                    "model": "support:tuned-v1",
                    "stream": True,
                    "messages": [
                        {"role": "user", "content": "How long is the warranty?"},
                        {"role": "assistant", "content": "24 months [1]."},
                        {"role": "user", "content": "And for refurbished units?"},
                    ],
                },
            ]
        },
    )

    model: str = Field(..., description="Collection name, optionally ':adapter' for a registered LoRA adapter.")
    messages: list[OpenAIMessage] = Field(..., min_length=1)
    stream: bool = False
    user: str | None = None


class DocumentOut(BaseModel):
    id: str
    name: str
    path: str
    doc_type: str
    title: str | None
    size: int
    chunks: int
    ingested_at: float
    uploaded: bool = Field(..., description="Whether it came in through the API (its file is managed by docqa).")


class UploadResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "job_id": "6f1c2a9e0b3d4e57",
                    "status_url": "/v1/jobs/6f1c2a9e0b3d4e57",
                    "collection": "support",
                    "files": [{"name": "warranty.pdf", "original": "warranty.pdf", "stored": "new"}],
                }
            ]
        }
    )

    job_id: str
    status_url: str
    collection: str
    files: list[dict[str, str]]
