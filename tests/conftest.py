"""Fixtures every test folder may use: the loaded embedder, private settings and services, and the
converted chat checkpoint with a real vLLM server (started once per session, for the integration tests).
Each folder's own ``conftest.py`` holds the fixtures only it needs; helpers to import are in
``tests/helpers.py``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from docqa.services import Services
from rag.embedder import SentenceTransformerEmbedder
from rag.settings import EmbedderSettings, Settings
from tests.helpers import CACHE_DIR, GROUNDED_ADAPTER, REPO, TEST_ADAPTER, VLLMServer, free_port, make_random_lora
from tests.postgres_server import PostgresServer, postgres_bin, postgres_server


@pytest.fixture(scope="session")
def embedder() -> SentenceTransformerEmbedder:
    """The bundled embedder, loaded once per test session."""
    emb = SentenceTransformerEmbedder(EmbedderSettings())
    emb.warm_up()
    return emb


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings whose data directory is private to the test."""
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def services(settings: Settings, embedder: SentenceTransformerEmbedder) -> Services:
    return Services(settings, embedder=embedder)  # the session's loaded model


@pytest.fixture(scope="session")
def prepared_model_dir() -> Path:
    """The bundled SmolLM2 converted to safetensors, under <repo>/.cache/models (converted once and
    reused across sessions: the conversion takes about a minute)."""
    from docqa.model_server import prepare

    return prepare(Settings(data_dir=CACHE_DIR))


@pytest.fixture(scope="session")
def vllm_server(prepared_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VLLMServer]:
    """A real vLLM server (the CPU build here) on a free local port, serving the converted model, the
    shipped grounded adapter (which the pipeline then answers with, as in ``make run``) and a small random
    LoRA adapter; stopped at session end, and it dies with the test process (PR_SET_PDEATHSIG), so a
    crashed session leaves nothing behind."""
    import importlib.util

    from docqa.model_server import ModelServer, server_url, venv_python
    from rag.adapters import register_adapter

    data_dir = tmp_path_factory.mktemp("vllm-data")
    port = free_port()
    settings = Settings(
        data_dir=data_dir,
        model={
            "source": str(prepared_model_dir),
            "port": port,
            "max_model_len": 2048,
            "venv": REPO / ".venv-vllm",
        },
        llm={"backend": "openai", "base_url": f"http://127.0.0.1:{port}/v1", "context_window": 2048},
    )
    if not venv_python(settings).exists():
        pytest.fail(f"vLLM's environment is missing ({venv_python(settings)}); `make setup` creates it")
    adapter = None
    if (GROUNDED_ADAPTER / "adapter_model.safetensors").exists():
        register_adapter(settings, settings.answer.adapter or GROUNDED_ADAPTER.name, GROUNDED_ADAPTER)
    if importlib.util.find_spec("peft") is not None:
        register_adapter(settings, TEST_ADAPTER, make_random_lora(prepared_model_dir, data_dir / "test-lora"))
        adapter = TEST_ADAPTER
    server = ModelServer(settings)
    server.start()
    try:
        server.wait_ready()
        yield VLLMServer(server_url(settings), settings, server, adapter)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server (Debian's package; `make test` installs it) on a free 127.0.0.1 port, for the
    session; each test takes a database of its own with ``postgres_dsn``."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (/usr/lib/postgresql/*/bin): `make test` installs Debian's postgresql")
    with postgres_server(bin_dir) as server:
        yield server


@pytest.fixture
def postgres_dsn(postgres: PostgresServer) -> str:
    """The DSN of a new, empty database on the session's server."""
    return postgres.create_database()
