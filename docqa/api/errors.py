"""The API's one error shape, ``{"error": {"status", "type", "message", "field"?}}`` (OpenAI clients read
``error.message``), and the mapping from domain errors to HTTP statuses."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag.errors import (
    CollectionLockedError,
    CollectionNotFoundError,
    ConfigError,
    DocqaError,
    GenerationError,
    IndexMismatchError,
    IngestError,
    MissingDependencyError,
    ModelServerError,
    StateStoreError,
)

log = logging.getLogger(__name__)

MODEL_RETRY_AFTER_S = 30  # what a 503 tells clients to wait before retrying

_STATUS: list[tuple[type[DocqaError], int, str]] = [
    (CollectionNotFoundError, 404, "collection_not_found"),
    (ModelServerError, 503, "model_unavailable"),
    (StateStoreError, 503, "state_unavailable"),
    (CollectionLockedError, 409, "collection_locked"),
    (IndexMismatchError, 503, "index_mismatch"),
    (IngestError, 422, "ingest_error"),
    (GenerationError, 502, "generation_error"),
    (ConfigError, 500, "config_error"),
    (MissingDependencyError, 500, "missing_dependency"),
]


class ApiError(Exception):
    """An error raised by the API layer itself (auth, limits, validation of things pydantic cannot see)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request",
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.field = field
        self.headers = headers or {}


# What public (widget) and unauthenticated callers read instead of a 5xx's detail, which names internal
# addresses and the operator's commands: that goes to staff keys and the log.
PUBLIC_MESSAGES = {
    "model_unavailable": "the answering service is temporarily unavailable; please try again in a moment",
    "index_mismatch": "the documents are temporarily unavailable; please try again later",
    "generation_error": "the answer could not be generated; please try again",
    "state_unavailable": "the service is temporarily unavailable; please try again in a moment",
}
PUBLIC_FALLBACK = "the service could not handle this request; please try again later"


def printable(text: str) -> str:
    """``text`` as it can be encoded in UTF-8: a lone surrogate (what a JSON ``"\\ud800"`` escape decodes
    to) becomes its escape, so an error message echoing a caller's input always renders."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def error_body(status: int, type: str, message: str, field: str | None = None) -> dict:
    error: dict = {"status": status, "type": type, "message": printable(message)}
    if field:
        error["field"] = printable(field)
    return {"error": error}


def status_for(exc: DocqaError) -> tuple[int, str]:
    for cls, status, kind in _STATUS:
        if isinstance(exc, cls):
            return status, kind
    return 400, "invalid_request"  # e.g. an invalid collection name


def describe(exc: DocqaError, *, detailed: bool, log_it: bool = True) -> tuple[int, str, str]:
    """Status, type and message for a caller. A server-side failure's detail is logged (unless
    ``log_it`` is off: a probe asked again every few seconds) and shown only when ``detailed`` (staff
    keys); others get a plain message."""
    status, kind = status_for(exc)
    if status < 500:
        return status, kind, str(exc)
    if log_it:
        log.warning("%s %s: %s", status, kind, exc)
    return status, kind, str(exc) if detailed else PUBLIC_MESSAGES.get(kind, PUBLIC_FALLBACK)


def is_staff(request: Request) -> bool:
    """Whether the request was authenticated with a staff key (``authenticate`` records the key)."""
    key = getattr(request.state, "api_key", None)
    return key is not None and key.scope == "staff"


def domain_error_response(exc: DocqaError, *, detailed: bool) -> JSONResponse:
    status, kind, message = describe(exc, detailed=detailed)
    headers = {"Retry-After": str(MODEL_RETRY_AFTER_S)} if status == 503 else None
    return JSONResponse(error_body(status, kind, message), status_code=status, headers=headers)


def _field(loc: tuple) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "form")]
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.status, exc.type, exc.message, exc.field), status_code=exc.status, headers=exc.headers
        )

    @app.exception_handler(DocqaError)
    async def _domain_error(request: Request, exc: DocqaError) -> JSONResponse:
        return domain_error_response(exc, detailed=is_staff(request))

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        field = _field(tuple(first.get("loc", ())))
        inner = (first.get("ctx") or {}).get("field")  # a model validator names the field inside the body
        if inner:
            field = inner if field == "body" else f"{field}.{inner}"
        message = f"{field}: {first.get('msg', 'invalid value')}"
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more problem(s))"
        return JSONResponse(error_body(422, "invalid_request", message, field), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc.__cause__, UnicodeDecodeError):  # FastAPI's 400 for a body that is not UTF-8
            bad = exc.__cause__
            message = f"body: not valid UTF-8 (byte {bad.start}); send JSON encoded as UTF-8"
            return JSONResponse(error_body(422, "invalid_request", message, "body"), status_code=422)
        kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(
            error_body(exc.status_code, kind, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
        )
