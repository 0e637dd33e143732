"""``/healthz`` (the process answers), ``/readyz`` (an index loads and the model server answers) and
``/metrics`` (Prometheus). The two probes need no key and say nothing about the documents."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from docqa.api.auth import AdminKey
from docqa.api.errors import describe
from docqa.api.metrics import CONTENT_TYPE
from docqa.api.state import ApiState, get_state
from rag import __version__
from rag.errors import DocqaError

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, Any]:
    """Liveness: the API process is up. Answered on the event loop itself: a sync route would wait for a
    worker thread, and under load every worker thread is busy with answers."""
    return {"status": "ok", "version": __version__}


NO_INDEX = "no collection has been ingested yet"


def _staff_caller(state: ApiState, request: Request) -> bool:
    """Whether an (optional) Authorization header carries a staff key: only then do failed checks say why."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return False
    key = state.keys.verify(token.strip())
    return key is not None and key.scope == "staff"


@router.get("/readyz", responses={503: {"description": "Not ready: the body says which check failed."}})
def readyz(request: Request) -> JSONResponse:
    """Readiness: every collection's index loads and the model server answers. Without a staff key a
    failed check says only what failed; the reason (addresses, commands) is logged and shown to staff keys."""
    state = get_state(request)
    detailed = _staff_caller(state, request)
    checks: dict[str, dict[str, Any]] = {}
    try:
        names = [c.name for c in state.services.collections()]
        for name in names:
            state.services.reader(name)
        checks["index"] = (
            {"ok": True, "collections": len(names)}
            if names
            else {"ok": False, "error": NO_INDEX + (" (upload documents or `docqa ingest`)" if detailed else "")}
        )
    except DocqaError as exc:
        checks["index"] = {"ok": False, "error": describe(exc, detailed=detailed, log_it=False)[2]}
    try:
        state.services.generator.check()
        checks["model_server"] = {"ok": True}
    except DocqaError as exc:
        checks["model_server"] = {"ok": False, "error": describe(exc, detailed=detailed, log_it=False)[2]}
    ready = all(c["ok"] for c in checks.values())
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


@router.get("/metrics", response_class=Response)
def metrics(request: Request, key: AdminKey) -> Response:
    """Prometheus metrics (an admin key for all collections: they list every key id): requests, latencies,
    retrieval and generation time, tokens."""
    return Response(get_state(request).metrics.render(), media_type=CONTENT_TYPE)
