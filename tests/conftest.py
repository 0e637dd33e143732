"""Shared fixtures. Plugin modules hold the heavier ones (the vLLM server, the API server, Chromium)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from rag.embedder import SentenceTransformerEmbedder
from rag.services import Services
from rag.settings import EmbedderSettings, Settings

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "data" / "samples"
# Debian's Chromium, started so that it makes no connections of its own (the network here is closed).
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytest_plugins = ["tests.fixtures_vllm", "tests.fixtures_ui", "tests.fixtures_api", "tests.fixtures_finetune"]


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
