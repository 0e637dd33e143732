"""What the UI tests import: pointing the app at settings (as `docqa ui` hands them over) and a running UI."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from streamlit import config

from docqa.cli.ui_cmds import child_environment
from docqa.services import Services
from rag.embedder import SentenceTransformerEmbedder
from rag.settings import Settings
from tests.helpers import CHROMIUM, CHROMIUM_ARGS


def use_settings(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    """Point the app (which reads DOCQA_* like `docqa ui` hands them over) at these settings."""
    for key in [k for k in os.environ if k.startswith("DOCQA_")]:
        monkeypatch.delenv(key)
    for key, value in child_environment(settings, {}).items():
        monkeypatch.setenv(key, value)
    # AppTest serves nothing, but the app checks where it listens (no sign-in only on loopback): as `docqa ui`.
    config.set_option("server.address", "127.0.0.1")


SUPPORT_AND_LEGAL = (("support", "The dock has a blue status light."), ("legal", "The warranty is two years."))


def ingest_support_and_legal(settings: Settings, embedder: SentenceTransformerEmbedder, root: Path) -> None:
    """The access tests' two collections, 'support' and 'legal', one small document each (written under
    ``root``), ingested with the real pipeline into ``settings``' data directory."""
    services = Services(settings, embedder=embedder)
    for collection, text in SUPPORT_AND_LEGAL:
        src = root / f"{collection}.md"
        src.write_text(f"# {collection}\n\n{text}\n")
        assert services.ingestor.ingest([src], collection, prune=False).ok


@dataclass
class RunningUI:
    url: str
    process: subprocess.Popen
    log: Path


@contextmanager
def fresh_tab(url: str, profile: Path, wait_ms: int) -> Iterator[Any]:
    """A tab of a fresh Chromium profile (a new session, no cookies) on ``url``; ``wait_ms`` is every wait's
    timeout, generous because a loaded machine's first UI run loads the embedder."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=wait_ms)
    with sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 1000},
        )
        try:
            tab = browser.new_page()
            tab.set_default_timeout(wait_ms)
            tab.goto(url, wait_until="domcontentloaded")
            yield tab
        finally:
            browser.close()
