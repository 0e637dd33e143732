"""Fixtures for the API tests: an indexed corpus, API apps over it (in-process TestClient or a real uvicorn
on a free port), keys, and a static host page on another origin for the widget."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from rag.api.app import create_app
from rag.api.server import uvicorn_config
from rag.api.state import ApiState
from rag.embedder import SentenceTransformerEmbedder
from rag.services import Services
from rag.settings import Settings
from tests.conftest import SAMPLES

SERVER_START_TIMEOUT_S = 30
# A document for the "internal" collection: a widget key bound to "support" must never see it.
INTERNAL_TEXT = "# Salaries\n\nThe internal salary band for a senior technician is 61,000 EUR per year.\n"
# A poisoned document: markup that must show up as text in the widget, never as elements.
POISON_TEXT = (
    "# Descaling\n\nDescaling the Sweep S3 water tank takes 15 minutes with citric acid. "
    '<img src="x" onerror="window.__pwned = 1"> <b id="injected">bold</b> '
    "<script>window.__pwned = 2</script>\n"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def closed_llm_url() -> str:
    """An OpenAI-style URL where nothing listens: the model server is 'down'."""
    return f"http://127.0.0.1:{free_port()}/v1"


def share_embedder(settings: Settings, embedder: SentenceTransformerEmbedder) -> Services:
    return Services(settings, embedder=embedder)  # the session's loaded model


@pytest.fixture(scope="session")
def api_data_dir(tmp_path_factory: pytest.TempPathFactory, embedder: SentenceTransformerEmbedder) -> Path:
    """A data directory with 'support' (the sample corpus, without QUESTIONS.md), 'internal' (one private
    document) and 'poisoned' (a document full of markup). Tests read it; writers use their own."""
    data = tmp_path_factory.mktemp("api") / "data"
    services = share_embedder(Settings(data_dir=data), embedder)
    files = sorted(p for p in SAMPLES.iterdir() if p.is_file() and p.name != "QUESTIONS.md")
    report = services.ingestor.ingest(files, "support", prune=False)
    assert report.ok and len(report.added) == len(files), report.failed
    docs = data.parent / "docs"
    docs.mkdir()
    (docs / "salaries.md").write_text(INTERNAL_TEXT)
    (docs / "descaling.txt").write_text(POISON_TEXT)
    assert services.ingestor.ingest([docs / "salaries.md"], "internal").ok
    assert services.ingestor.ingest([docs / "descaling.txt"], "poisoned").ok
    return data


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


@pytest.fixture
def make_api(embedder: SentenceTransformerEmbedder) -> Iterator[Callable[..., ApiHandle]]:
    """``make_api(settings)``: the app over ``settings`` behind an in-process TestClient."""
    opened: list[TestClient] = []

    def make(settings: Settings) -> ApiHandle:
        app = create_app(settings, share_embedder(settings, embedder))
        client = TestClient(app, base_url="http://testserver")
        client.__enter__()
        opened.append(client)
        return ApiHandle(app, client, "http://testserver")

    try:
        yield make
    finally:
        for client in opened:
            client.__exit__(None, None, None)


@pytest.fixture
def offline_api(make_api: Callable[..., ApiHandle], api_data_dir: Path) -> ApiHandle:
    """The app over the shared corpus with the model server down (nothing listens at its URL)."""
    return make_api(Settings(data_dir=api_data_dir).with_overrides(llm__base_url=closed_llm_url()))


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


@pytest.fixture
def serve_api(embedder: SentenceTransformerEmbedder) -> Iterator[Callable[..., ApiHandle]]:
    """``serve_api(settings)``: the app under a real uvicorn (streaming, browsers); stopped at teardown."""
    running: list[tuple[UvicornThread, httpx.Client]] = []

    def serve(settings: Settings) -> ApiHandle:
        app = create_app(settings, share_embedder(settings, embedder))
        server = UvicornThread(app, settings).start()
        client = httpx.Client(base_url=server.url, timeout=httpx.Timeout(300, connect=5))
        running.append((server, client))
        return ApiHandle(app, client, server.url)

    try:
        yield serve
    finally:
        for server, client in running:
            client.close()
            server.stop()


@dataclass
class HostPage:
    """A static page on its own origin that embeds the widget."""

    url: str
    origin: str
    root: Path  # the folder it serves: rewrite index.html once the origin (and so the key) is known


@pytest.fixture
def host_page(tmp_path: Path) -> Iterator[Callable[[str], HostPage]]:
    """``host_page(html)``: serve ``html`` as index.html from another 127.0.0.1 port (another origin)."""
    servers: list[tuple[http.server.ThreadingHTTPServer, threading.Thread]] = []

    def serve(html: str) -> HostPage:
        root = tmp_path / f"site{len(servers)}"
        root.mkdir()
        (root / "index.html").write_text(html)

        class Quiet(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, directory=str(root), **kwargs)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        servers.append((httpd, thread))
        origin = f"http://127.0.0.1:{httpd.server_address[1]}"
        return HostPage(f"{origin}/index.html", origin, root)

    try:
        yield serve
    finally:
        for httpd, thread in servers:
            httpd.shutdown()
            httpd.server_close()
            thread.join(timeout=10)


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
