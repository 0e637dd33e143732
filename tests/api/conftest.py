"""Fixtures for the API tests: an indexed corpus, API apps over it (in-process TestClient or a real uvicorn
on a free port), and a static host page on another origin for the widget."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from docqa.api.app import create_app
from rag.embedder import SentenceTransformerEmbedder
from rag.settings import Settings
from tests.api.helpers import (
    INTERNAL_TEXT,
    POISON_TEXT,
    ApiHandle,
    HostPage,
    UvicornThread,
    share_embedder,
)
from tests.helpers import closed_llm_url, sample_files


@pytest.fixture(scope="session")
def api_data_dir(tmp_path_factory: pytest.TempPathFactory, embedder: SentenceTransformerEmbedder) -> Path:
    """A data directory with 'support' (the sample corpus, without QUESTIONS.md), 'internal' (one private
    document) and 'poisoned' (a document full of markup). Tests read it; writers use their own."""
    data = tmp_path_factory.mktemp("api") / "data"
    services = share_embedder(Settings(data_dir=data), embedder)
    files = sample_files()
    report = services.ingestor.ingest(files, "support", prune=False)
    assert report.ok and len(report.added) == len(files), report.failed
    docs = data.parent / "docs"
    docs.mkdir()
    (docs / "salaries.md").write_text(INTERNAL_TEXT)
    (docs / "descaling.txt").write_text(POISON_TEXT)
    assert services.ingestor.ingest([docs / "salaries.md"], "internal").ok
    assert services.ingestor.ingest([docs / "descaling.txt"], "poisoned").ok
    return data


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
