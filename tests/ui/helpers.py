"""What the UI tests import: pointing the app at settings (as `docqa ui` hands them over) and a running UI."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from streamlit import config

from docqa.cli.ui_cmds import child_environment
from rag.settings import Settings


def use_settings(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    """Point the app (which reads DOCQA_* like `docqa ui` hands them over) at these settings."""
    for key in [k for k in os.environ if k.startswith("DOCQA_")]:
        monkeypatch.delenv(key)
    for key, value in child_environment(settings, {}).items():
        monkeypatch.setenv(key, value)
    # AppTest serves nothing, but the app checks where it listens (no sign-in only on loopback): as `docqa ui`.
    config.set_option("server.address", "127.0.0.1")


@dataclass
class RunningUI:
    url: str
    process: subprocess.Popen
    log: Path
