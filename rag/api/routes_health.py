"""``/healthz`` (the process answers), ``/readyz`` (an index loads and the model server answers) and
``/metrics`` (Prometheus). The two probes need no key and say nothing about the documents."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from rag import __version__
from rag.api.auth import StaffKey
from rag.api.metrics import CONTENT_TYPE
from rag.api.state import get_state
from rag.errors import DocqaError

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, Any]:
    """Liveness: the API process is up."""
    return {"status": "ok", "version": __version__}


@router.get("/readyz", responses={503: {"description": "Not ready: the body says which check failed."}})
def readyz(request: Request) -> JSONResponse:
    """Readiness: every collection's index loads and the model server answers."""
    state = get_state(request)
    checks: dict[str, dict[str, Any]] = {}
    try:
        names = [c.name for c in state.services.collections()]
        for name in names:
            state.services.reader(name)
        checks["index"] = (
            {"ok": True, "collections": len(names)}
            if names
            else {"ok": False, "error": "no collection has been ingested yet (upload documents or `docqa ingest`)"}
        )
    except DocqaError as exc:
        checks["index"] = {"ok": False, "error": str(exc)}
    try:
        state.services.generator.check()
        checks["model_server"] = {"ok": True}
    except DocqaError as exc:
        checks["model_server"] = {"ok": False, "error": str(exc)}
    ready = all(c["ok"] for c in checks.values())
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


@router.get("/metrics", response_class=Response)
def metrics(request: Request, key: StaffKey) -> Response:
    """Prometheus metrics (staff key): requests, latencies, retrieval and generation time, tokens."""
    return Response(get_state(request).metrics.render(), media_type=CONTENT_TYPE)
