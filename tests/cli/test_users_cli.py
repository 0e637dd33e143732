"""`docqa users ...`, `docqa audit export` and `docqa ui`'s refusal to listen on the network without sign-in,
run as a person would: the CLI on a private data directory (SQLite state store)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from docqa.cli.main import app
from docqa.cli.ui_cmds import check_sign_in, is_loopback
from docqa.state import open_state
from rag.settings import Settings, load_settings
from tests.helpers import REPO

PASSWORD = "correct horse battery"


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in [k for k in os.environ if k.startswith("DOCQA_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("DOCQA_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def invoke(*args: str, stdin: str | None = None):
    return CliRunner().invoke(app, list(args), input=stdin)


def test_add_list_set_role_remove_and_the_audit_export(data_dir: Path, tmp_path: Path) -> None:
    added = invoke("users", "add", "bob", "--role", "editor", "--collections", "support,legal", stdin=PASSWORD + "\n")
    assert added.exit_code == 0, added.output
    store = open_state(load_settings())
    assert store.users.authenticate("bob", PASSWORD).collections == ("support", "legal")

    listed = invoke("users", "list", "--json")
    (row,) = json.loads(listed.stdout)
    assert row["name"] == "bob" and row["role"] == "editor" and PASSWORD not in listed.stdout
    assert "argon2" not in listed.stdout

    assert invoke("users", "set-role", "bob", "reader", "--collections", "*").exit_code == 0
    assert store.users.get("bob").role == "reader" and store.users.get("bob").collections == ()
    assert invoke("users", "set-role", "bob", "owner").exit_code != 0
    assert invoke("users", "remove", "bob").exit_code == 0
    assert store.users.get("bob") is None
    missing = invoke("users", "remove", "bob")
    assert missing.exit_code != 0 and "no user 'bob'" in str(missing.exception)

    out = tmp_path / "audit.jsonl"
    exported = invoke("audit", "export", "--out", str(out))
    assert exported.exit_code == 0, exported.output
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert [e["action"] for e in events] == ["user_add", "user_set_role", "user_remove"]
    assert all(e["actor"].startswith("cli") and e["target"] == "bob" for e in events)
    assert events[0]["detail"] == {"role": "editor", "collections": ["support", "legal"]}
    assert PASSWORD not in out.read_text()


def test_a_short_or_missing_password_is_refused(data_dir: Path) -> None:
    short = invoke("users", "add", "bob", "--role", "reader", stdin="short\n")
    assert short.exit_code != 0 and "too short" in str(short.exception)
    assert invoke("users", "add", "bob", "--role", "reader", stdin="").exit_code != 0
    assert open_state(load_settings()).users.list() == []


def test_ui_refuses_the_network_without_sign_in(data_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCQA_")} | {"DOCQA_DATA_DIR": str(data_dir)}
    run = subprocess.run(
        [sys.executable, "-m", "docqa.cli.main", "ui", "--address", "0.0.0.0", "--port", "1"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode != 0
    assert "refusing to listen on 0.0.0.0" in run.stderr and "docqa users add" in run.stderr
    assert "DOCQA_AUTH_METHOD=local" in run.stderr


def test_which_addresses_need_a_sign_in() -> None:
    assert all(is_loopback(a) for a in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(a) for a in ("0.0.0.0", "10.0.0.5", "::", "ui.internal"))
    none = Settings()
    assert check_sign_in(none, "127.0.0.1") is None and check_sign_in(none, "0.0.0.0")
    assert check_sign_in(none.with_overrides(auth__method="local"), "0.0.0.0") is None


def test_audit_export_help_names_every_action() -> None:
    from docqa.auth.audit import ACTIONS
    from docqa.cli.users_cmds import export

    listed = set(re.findall(r"\w+", export.__doc__ or ""))
    assert set(ACTIONS) <= listed, set(ACTIONS) - listed
