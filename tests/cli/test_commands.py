"""The CLI core registers features through their ``register_commands(app)`` hooks, in the order listed."""

from __future__ import annotations

import typer
from typer.main import get_command

from docqa.cli import COMMAND_MODULES
from docqa.cli.main import build_app

EVERY_COMMAND = [
    "ingest", "search", "collections", "remove", "ask", "up", "serve", "config",
    "keys", "model", "eval", "ui", "feedback", "users", "audit", "finetune",
]  # fmt: skip


def names(app: typer.Typer) -> list[str]:
    group = get_command(app)
    return list(group.list_commands(None))  # type: ignore[attr-defined]


def test_every_feature_registers_its_commands_in_order() -> None:
    assert names(build_app()) == EVERY_COMMAND


def test_the_core_takes_features_by_name() -> None:
    assert names(build_app(("docqa.cli.ask_cmds", "docqa.cli.model_cmds"))) == ["ask", "config", "model"]
    assert all(name.startswith("docqa.cli.") for name in COMMAND_MODULES)
