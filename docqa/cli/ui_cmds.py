"""`docqa ui`: the staff chat UI (Streamlit), with the resolved settings handed to it through the environment."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import typer
from pydantic import SecretStr

from docqa.auth.network import is_loopback
from docqa.auth.oidc import CALLBACK_PATH, missing_settings, write_streamlit_secrets
from rag.settings import Settings, load_settings

APP_SCRIPT = Path(__file__).resolve().parents[2] / "ui" / "app.py"

EXAMPLES = """Examples:

  docqa ui

  docqa ui --port 8600

  DOCQA_AUTH_METHOD=local DOCQA_DATA_DIR=/srv/docqa docqa ui --address 0.0.0.0

  DOCQA_AUTH_METHOD=oidc DOCQA_AUTH_OIDC_ISSUER=https://login.example.com/realms/staff \\
  DOCQA_AUTH_OIDC_CLIENT_ID=docqa DOCQA_AUTH_OIDC_CLIENT_SECRET=... \\
  DOCQA_AUTH_OIDC_REDIRECT_URI=https://docqa.example.com/oauth2callback \\
  DOCQA_AUTH_OIDC_GROUP_ROLES='{"docqa-admins": "admin", "staff": "reader"}' docqa ui --address 0.0.0.0
"""

NO_SIGN_IN = """refusing to listen on {address} with no sign-in (auth.method = 'none'): anyone who can reach it
could ask every collection, upload and delete documents and read the feedback. Either listen on this machine
only (--address 127.0.0.1), or turn on local accounts:
  docqa users add NAME --role admin
  DOCQA_AUTH_METHOD=local docqa ui --address {address}
or single sign-on with your OpenID Connect provider (DOCQA_AUTH_METHOD=oidc and DOCQA_AUTH_OIDC_*).
(docs/auth.md has the details)"""

OIDC_REDIRECT = """auth.method 'oidc' on {address} needs auth.oidc_redirect_uri (DOCQA_AUTH_OIDC_REDIRECT_URI): the UI's
address as users reach it followed by /oauth2callback, e.g. https://docqa.example.com/oauth2callback, registered
at the provider as this client's redirect URI (the default, http://localhost:PORT/oauth2callback, serves this
machine only)"""


def check_sign_in(settings: Settings, address: str) -> str | None:
    """Why the UI must not start on this address with these settings (None: it may); a warning for an
    account-less local setup is the caller's to print."""
    method = settings.auth.method
    if method == "none" and not is_loopback(address):
        return NO_SIGN_IN.format(address=address)
    if method == "oidc":
        auth = settings.auth
        missing = missing_settings(auth)
        if missing:
            return f"auth.method 'oidc' needs {', '.join(missing)} (docs/auth.md)"
        if auth.oidc_redirect_uri and not auth.oidc_redirect_uri.endswith(CALLBACK_PATH):
            return f"auth.oidc_redirect_uri must end with {CALLBACK_PATH} (Streamlit's): {auth.oidc_redirect_uri}"
        if not auth.oidc_redirect_uri and not is_loopback(address):
            return OIDC_REDIRECT.format(address=address)
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
    for section, values in data.items():  # a secret is dumped masked; the child needs the value
        if not isinstance(values, dict):
            continue
        model = getattr(settings, section)
        hidden = {k: v.get_secret_value() for k in values if isinstance(v := getattr(model, k), SecretStr)}
        if hidden:
            env[f"DOCQA_{section.upper()}"] = json.dumps({**values, **hidden})
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


def streamlit_command(
    settings: Settings, *, port: int | None = None, address: str = "127.0.0.1", secrets_file: Path | None = None
) -> list[str]:
    """``streamlit run`` for the app; ``secrets_file`` (OIDC) is the only secrets file Streamlit then reads."""
    secrets = ["--secrets.files", str(secrets_file)] if secrets_file is not None else []
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
        *secrets,
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
    secrets_file = None
    if settings.auth.method == "oidc":
        auth = settings.auth
        if not auth.oidc_group_roles and auth.oidc_default_role is None:
            print(
                "warning: no group has a role (auth.oidc_group_roles) and there is no auth.oidc_default_role, "
                "so every sign-in is refused",
                file=sys.stderr,
            )
        secrets_file = write_streamlit_secrets(settings)
    command = streamlit_command(settings, port=port, address=address, secrets_file=secrets_file)
    print(f"docqa staff UI: http://{address}:{port or settings.ui.port}", file=sys.stderr, flush=True)
    # Replace this process, so that a signal for `docqa ui` (Ctrl-C, `docqa up` stopping) reaches Streamlit.
    os.execve(sys.executable, command, child_environment(settings))


def register_commands(root: typer.Typer) -> None:
    """`docqa ui` (a group with a callback, so that its help shows the examples epilog)."""
    root.add_typer(app, name="ui", help="Start the staff chat UI (Streamlit).")
