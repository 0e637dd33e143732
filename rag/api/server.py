"""``run_api(settings)``: serve the API under uvicorn in the foreground (`docqa serve`, `docqa up`)."""

from __future__ import annotations

import logging

from rag.services import Services, build
from rag.settings import Settings

log = logging.getLogger(__name__)


def run_api(
    settings: Settings, services: Services | None = None, *, host: str | None = None, port: int | None = None
) -> None:
    """Load the embedder first (the first question should not pay for it), then serve until stopped."""
    import uvicorn

    from rag.api.app import create_app

    services = services or build(settings)
    services.embedder.warm_up()
    app = create_app(settings, services)
    uvicorn.run(
        app,
        host=host or settings.api.host,
        port=port or settings.api.port,
        log_level=settings.log_level.lower(),
        proxy_headers=True,
        timeout_graceful_shutdown=30,
    )
