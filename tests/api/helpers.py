"""What the API tests import: app handles, a real uvicorn in a thread, a host page for the widget, an SSE
parser, and the two special documents of the shared corpus."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient

from docqa.api.server import uvicorn_config
from docqa.api.state import ApiState
from docqa.services import Services
from rag.embedder import SentenceTransformerEmbedder
from rag.settings import Settings
from tests.helpers import free_port

SERVER_START_TIMEOUT_S = 30
# A document for the "internal" collection: a widget key bound to "support" must never see it.
INTERNAL_TEXT = "# Salaries\n\nThe internal salary band for a senior technician is 61,000 EUR per year.\n"
# A poisoned document: markup that must show up as text in the widget, never as elements.
POISON_TEXT = (
    "# Descaling\n\nDescaling the Sweep S3 water tank takes 15 minutes with citric acid. "
    '<img src="x" onerror="window.__pwned = 1"> <b id="injected">bold</b> '
    "<script>window.__pwned = 2</script>\n"
)


def share_embedder(settings: Settings, embedder: SentenceTransformerEmbedder) -> Services:
    return Services(settings, embedder=embedder)  # the session's loaded model


@dataclass
class ApiHandle:
    """One app: its state (keys, metrics, conversations), an HTTP client, and key helpers."""

    app: FastAPI
    client: httpx.Client | TestClient
    base_url: str

    @property
    def state(self) -> ApiState:
        return self.app.state.docqa

    def key(self, scope: str = "staff", **kwargs: Any) -> str:
        return self.state.keys.create(scope, **kwargs)[0]

    def auth(self, key: str, origin: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {key}"}
        if origin:
            headers["Origin"] = origin
        return headers


class UvicornThread:
    """A real uvicorn serving an app on a free 127.0.0.1 port, in a thread, configured as `docqa serve`
    configures it; ``stop()`` ends it."""

    def __init__(self, app: FastAPI, settings: Settings) -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn_config(app, settings, host="127.0.0.1", port=self.port)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=f"uvicorn-{self.port}", daemon=True)

    def start(self) -> UvicornThread:
        self.thread.start()
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn on port {self.port} did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@dataclass
class HostPage:
    """A static page on its own origin that embeds the widget."""

    url: str
    origin: str
    root: Path  # the folder it serves: rewrite index.html once the origin (and so the key) is known


def sse_events(lines: Iterator[str]) -> Iterator[tuple[str, str]]:
    """Parse a text/event-stream the way a browser does: (event, data) per blank-line-terminated block;
    comments (keep-alives) are skipped."""
    event, data = "message", []
    for line in lines:
        if line == "":
            if data:
                yield event, "\n".join(data)
            event, data = "message", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "event":
            event = value
        elif field == "data":
            data.append(value)
    if data:
        yield event, "\n".join(data)
