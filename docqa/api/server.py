"""``run_api(settings)``: serve the API under uvicorn in the foreground (`docqa serve`, `docqa up`)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from docqa.services import Services, build
from rag.settings import Settings

if TYPE_CHECKING:
    import uvicorn
    from fastapi import FastAPI

log = logging.getLogger(__name__)


def uvicorn_config(
    app: FastAPI, settings: Settings, *, host: str | None = None, port: int | None = None
) -> uvicorn.Config:
    """uvicorn's configuration for the app. Forwarded headers are honoured only from ``api.trusted_proxies``:
    uvicorn would otherwise trust them from 127.0.0.1, so anyone behind a local pass-through proxy could
    name any client address and so escape per-visitor rate limits."""
    import uvicorn

    trusted = settings.api.trusted_proxies
    return uvicorn.Config(
        app,
        host=host or settings.api.host,
        port=port or settings.api.port,
        log_level=settings.log_level.lower(),
        proxy_headers=bool(trusted),
        forwarded_allow_ips=",".join(trusted) if trusted else "",
        timeout_graceful_shutdown=30,
    )


def run_api(
    settings: Settings, services: Services | None = None, *, host: str | None = None, port: int | None = None
) -> None:
    """Size the compute thread pools (``api.compute_threads``) before anything loads faiss or answers, load
    the embedder (the first question should not pay for it), then serve until stopped."""
    import uvicorn

    from docqa.api.app import create_app
    from rag.compute import limit_compute_threads

    limit_compute_threads(settings.api.compute_threads)
    services = services or build(settings)
    services.embedder.warm_up()
    app = create_app(settings, services)
    server: uvicorn.Server = uvicorn.Server(uvicorn_config(app, settings, host=host, port=port))
    server.run()
