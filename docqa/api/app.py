"""``create_app(settings, services=None)``: the FastAPI app with its routes, middleware and state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import Scope

from docqa.api import routes_answer, routes_documents, routes_health, routes_openai, routes_widget
from docqa.api.errors import install_error_handlers
from docqa.api.jobs import JobManager
from docqa.api.metrics import ApiMetrics
from docqa.api.middleware import BodyLimit, CORSFromKeys, MetricsAndHeaders
from docqa.api.state import ApiState
from docqa.services import Services, build
from docqa.state import open_state
from rag import __version__
from rag.settings import APISettings, Settings

MIB = 1024 * 1024
MULTIPART_SLACK = 64 * 1024  # multipart boundaries and part headers on top of the files themselves
JSON_SLACK = 64 * 1024  # field names, ids and options beside the texts

DESCRIPTION = """Answers from your own documents, with citations (file and page).

Authenticate with `Authorization: Bearer KEY` (`docqa keys create --scope staff|widget`). Staff keys
can do everything; widget keys can only ask, in the collections they are bound to, from the web
origins they list. Errors are `{"error": {"status", "type", "message", "field"?}}`.
"""


def json_body_limit(api: APISettings) -> int:
    """Largest JSON body: a full conversation of maximum-length turns (answers counted at twice a
    question's length), four bytes a character, plus slack."""
    turns = 2 * api.max_history_turns + 1
    return 4 * api.max_question_chars * 2 * turns + JSON_SLACK


def _limit_for(api: APISettings):  # -> Callable[[Scope], tuple[int, str]]
    upload = int(api.max_upload_mb * MIB)
    json_limit = json_body_limit(api)

    def limit_for(scope: Scope) -> tuple[int, str]:
        if scope.get("method") == "POST" and scope.get("path", "").endswith("/documents"):
            return (
                upload + MULTIPART_SLACK,
                f"uploads are limited to {api.max_upload_mb:g} MB per request (DOCQA_API_MAX_UPLOAD_MB)",
            )
        return (
            json_limit,
            f"the limit is {json_limit} bytes (questions up to {api.max_question_chars} characters, "
            f"conversations up to {api.max_history_turns} turns)",
        )

    return limit_for


def _mount_docs(app: FastAPI) -> None:
    """Interactive API docs at /docs from the swagger-ui-bundle package, so they work on a closed network."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/docs/assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="docqa API",
            swagger_js_url="/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/docs/assets/swagger-ui.css",
            swagger_favicon_url="/docs/assets/favicon-32x32.png",
        )


def create_app(settings: Settings, services: Services | None = None) -> FastAPI:
    """Build the app; ``services`` lets a caller share loaded models (tests, `docqa up`)."""
    services = services or build(settings)
    metrics = ApiMetrics()
    site_rate = settings.api.widget_key_rate_per_minute
    store = open_state(settings)  # state.backend: this process's files and memory, or a shared database
    state = ApiState(
        settings=settings,
        services=services,
        keys=store.keys,
        limiter=store.rate_limiter("caller", settings.api.rate_limit_per_minute, settings.api.rate_burst),
        # A site's visitors together may burst ten seconds' worth of the key's ceiling.
        widget_limiter=store.rate_limiter("site", site_rate, site_rate // 6),
        conversations=store.conversations(settings.api.conversation_ttl_s),
        jobs=JobManager(
            settings, services, on_finish=lambda job: metrics.jobs.labels(job.state).inc(), records=store.jobs
        ),
        metrics=metrics,
        store=store,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        state.jobs.shutdown()  # let a running ingest commit rather than leave debris
        store.close()

    app = FastAPI(
        title="docqa",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served below from the packaged Swagger UI: FastAPI's default loads it from a CDN
        redoc_url=None,
        openapi_tags=[
            {"name": "answers", "description": "Questions answered from a collection, with citations."},
            {"name": "openai-compatible", "description": "Use docqa from any OpenAI client."},
            {"name": "documents", "description": "Collections, uploads and ingest jobs (staff keys, by role)."},
            {"name": "health", "description": "Probes and metrics."},
            {"name": "widget", "description": "The embeddable chat widget."},
        ],
    )
    app.state.docqa = state
    _mount_docs(app)
    install_error_handlers(app)
    for module in (routes_answer, routes_openai, routes_documents, routes_health, routes_widget):
        app.include_router(module.router)
    # Last added runs first: metrics see every response, CORS headers reach even a 413.
    app.add_middleware(BodyLimit, limit_for=_limit_for(settings.api))
    app.add_middleware(CORSFromKeys, known_origins=state.keys.known_origins)
    app.add_middleware(MetricsAndHeaders, metrics=metrics)
    return app
