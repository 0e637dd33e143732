"""Fixtures for the Streamlit UI tests: an indexed sample corpus and a running `docqa ui`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from docqa.cli.ui_cmds import child_environment
from docqa.services import Services
from rag.embedder import SentenceTransformerEmbedder
from rag.settings import Settings
from tests.helpers import REPO, free_port, sample_files
from tests.ui.helpers import RunningUI

UI_STARTUP_TIMEOUT_S = 120


@pytest.fixture(scope="session")
def ui_data_dir(tmp_path_factory: pytest.TempPathFactory, embedder: SentenceTransformerEmbedder) -> Path:
    """A data directory whose 'default' collection holds the sample corpus (without QUESTIONS.md, which
    lists the answers). Tests only read it; ones that write use their own data directory."""
    data = tmp_path_factory.mktemp("ui") / "data"
    services = Services(Settings(data_dir=data), embedder=embedder)
    files = sample_files()
    report = services.ingestor.ingest(files, "default", prune=False)
    assert report.ok and len(report.added) == len(files), report.failed
    return data


@contextmanager
def running_ui(settings: Settings, log: Path) -> Iterator[RunningUI]:
    """`docqa ui` on a free 127.0.0.1 port with these settings, until the block ends (its process group is
    stopped then)."""
    port = free_port()
    env = child_environment(settings)
    with open(log, "wb") as fh:
        process = subprocess.Popen(
            [sys.executable, "-m", "docqa.cli.main", "ui", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so teardown stops everything it started
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + UI_STARTUP_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"`docqa ui` exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/_stcore/health", timeout=2).text.strip() == "ok":
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"`docqa ui` did not answer within {UI_STARTUP_TIMEOUT_S} s:\n{log.read_text()}")
            time.sleep(0.5)
        yield RunningUI(url, process, log)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=15)


@pytest.fixture
def ui_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningUI]:
    """`docqa ui` on a free port, with the settings given by the test's `ui_settings` fixture value
    (indirect parametrisation is overkill here: the test module defines a `ui_settings` fixture)."""
    settings: Settings = request.getfixturevalue("ui_settings")
    with running_ui(settings, tmp_path / "streamlit.log") as ui:
        yield ui
