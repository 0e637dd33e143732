"""`docqa ui`: the staff chat UI (Streamlit), with the resolved settings handed to it through the environment."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import typer

from docqa.auth.network import is_loopback
from rag.errors import ConfigError
from rag.settings import Settings, load_settings

APP_SCRIPT = Path(__file__).resolve().parents[2] / "ui" / "app.py"

EXAMPLES = """Examples:

  docqa ui

  docqa ui --port 8600

  DOCQA_AUTH_METHOD=local DOCQA_DATA_DIR=/srv/docqa docqa ui --address 0.0.0.0
"""

NO_SIGN_IN = """refusing to listen on {address} with no sign-in (auth.method = 'none'): anyone who can reach it
could ask every collection, upload and delete documents and read the feedback. Either listen on this machine
only (--address 127.0.0.1), or turn on local accounts:
  docqa users add NAME --role admin
  DOCQA_AUTH_METHOD=local docqa ui --address {address}
(docs/auth.md has the details)"""


def check_sign_in(settings: Settings, address: str) -> str | None:
    """Why the UI must not start on this address with these settings (None: it may); a warning for an
    account-less local setup is the caller's to print."""
    method = settings.auth.method
    if method == "none" and not is_loopback(address):
        return NO_SIGN_IN.format(address=address)
    if method == "oidc":
        raise ConfigError("auth.method 'oidc' is not available yet: use 'local' (docqa users add NAME --role admin)")
    return None


app = typer.Typer(no_args_is_help=False, add_completion=False, epilog=EXAMPLES)


def settings_env(settings: Settings) -> dict[str, str]:
    """DOCQA_* variables from which the UI process rebuilds exactly these settings (whatever their
    origin: environment, docqa.toml or flags). Sections travel as JSON, the data directory as an
    absolute path so that the child's working directory cannot change it."""
    data = json.loads(settings.model_dump_json())
    env: dict[str, str] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            env[f"DOCQA_{key.upper()}"] = json.dumps(value)
        else:
            env[f"DOCQA_{key.upper()}"] = str(value)
    env["DOCQA_DATA_DIR"] = str(settings.data_dir.resolve())
    if settings.state.postgres_dsn is not None:  # a secret is dumped masked; the child needs the value
        state = {**data["state"], "postgres_dsn": settings.state.postgres_dsn.get_secret_value()}
        env["DOCQA_STATE"] = json.dumps(state)
    return env


def child_environment(settings: Settings, base: dict[str, str] | None = None) -> dict[str, str]:
    """The UI's environment: ours, minus per-field DOCQA_ variables (the section JSON replaces them)."""
    base = dict(os.environ if base is None else base)
    sections = {k for k, v in json.loads(settings.model_dump_json()).items() if isinstance(v, dict)}
    kept = {
        k: v
        for k, v in base.items()
        if not (k.startswith("DOCQA_") and any(k.startswith(f"DOCQA_{s.upper()}_") for s in sections))
        and k != "DOCQA_CONFIG"
    }
    kept.update(settings_env(settings))
    kept.setdefault("HF_HUB_OFFLINE", "1")  # the UI loads local models only
    kept.setdefault("TOKENIZERS_PARALLELISM", "false")
    return kept


def streamlit_command(settings: Settings, *, port: int | None = None, address: str = "127.0.0.1") -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP_SCRIPT),
        "--server.port",
        str(port or settings.ui.port),
        "--server.address",
        address,
        "--server.headless",
        "true",
        "--server.maxUploadSize",
        str(max(1, int(settings.ingest.max_file_mb))),
        "--browser.gatherUsageStats",
        "false",
        "--client.showErrorDetails",
        "type",  # an unexpected failure shows its type in the page; the traceback goes to this console
        "--client.toolbarMode",
        "minimal",
    ]


@app.callback(invoke_without_command=True)
def ui(
    ctx: typer.Context,
    port: int = typer.Option(None, "--port", "-p", help="Port (default: ui.port, DOCQA_UI_PORT, 8501)."),
    address: str = typer.Option(
        "127.0.0.1", "--address", help="Interface to listen on; 0.0.0.0 exposes the UI to the network."
    ),
) -> None:
    """Start the staff chat UI (Streamlit) in the foreground: chat with sources, documents, feedback.

    It answers through the same services as the API; the model server must be running for answers
    (`docqa model serve --detach`), and without it the page says so and still shows passages.

    The examples are the Typer epilog (EXAMPLES above), since the group's help text comes from main.py.
    """
    if ctx.invoked_subcommand is not None:
        return
    settings = load_settings()
    refusal = check_sign_in(settings, address)
    if refusal:
        print(f"error: {refusal}", file=sys.stderr)
        raise typer.Exit(2)
    if settings.auth.method == "local":
        from docqa.state import open_state

        store = open_state(settings)
        try:
            if not store.users.list():
                print(
                    "warning: no accounts yet, so nobody can sign in: docqa users add NAME --role admin",
                    file=sys.stderr,
                )
        finally:
            store.close()
    command = streamlit_command(settings, port=port, address=address)
    print(f"docqa staff UI: http://{address}:{port or settings.ui.port}", file=sys.stderr, flush=True)
    # Replace this process, so that a signal for `docqa ui` (Ctrl-C, `docqa up` stopping) reaches Streamlit.
    os.execve(sys.executable, command, child_environment(settings))


def register_commands(root: typer.Typer) -> None:
    """`docqa ui` (a group with a callback, so that its help shows the examples epilog)."""
    root.add_typer(app, name="ui", help="Start the staff chat UI (Streamlit).")
