"""`docqa serve` (the HTTP API and widget) and `docqa keys create|list|revoke` (its API keys). Making and
revoking a key is written to the audit trail as ``cli:<os user>``, with the key's role."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from rag.settings import load_settings

if TYPE_CHECKING:
    from docqa.api.keys import ApiKey
    from docqa.state import StateStore

out = Console()
err = Console(stderr=True)

app = typer.Typer(no_args_is_help=True, help="Create, list and revoke API keys (staff and widget).")


@contextmanager
def _state() -> Iterator[StateStore]:
    """The configured state store (keys, users, audit trail), closed after the command."""
    from docqa.state import open_state

    store = open_state(load_settings())
    try:
        yield store
    finally:
        store.close()


def _audit(store: StateStore, action: str, record: ApiKey) -> None:
    from docqa.auth.audit import cli_actor

    detail = {"scope": record.scope, "role": record.role, "collections": list(record.collections)}
    if record.user:
        detail["user"] = record.user
    store.audit.record(cli_actor(), action, target=record.id, detail=detail)


def serve(
    host: str = typer.Option(None, "--host", help="Bind address (default: DOCQA_API_HOST, 127.0.0.1)."),
    port: int = typer.Option(None, "--port", help="Port (default: DOCQA_API_PORT, 8080)."),
) -> None:
    """Serve the HTTP API and the embeddable widget (/widget.js) until Ctrl-C.

    Docs with examples at /docs. Keys come from `docqa keys create`.

    Examples:
      docqa serve
      DOCQA_API_PORT=9000 docqa serve --host 0.0.0.0
    """
    from docqa.api.server import run_api
    from docqa.state import open_state

    settings = load_settings()
    bind_host, bind_port = host or settings.api.host, port or settings.api.port
    base = settings.api.public_url or f"http://{bind_host}:{bind_port}"
    err.print(f"docqa API on [bold]{base}[/bold]  (docs {base}/docs · widget {base}/widget.js)", highlight=False)
    store = open_state(settings)  # a shared database that cannot be reached stops here, with the reason
    try:
        if not store.keys.list():
            err.print("[yellow]no API keys yet:[/yellow] create one with `docqa keys create --scope staff`")
    finally:
        store.close()
    run_api(settings, host=bind_host, port=bind_port)


@app.command("create")
def create(
    scope: str = typer.Option(..., "--scope", help="staff (by role) or widget (ask only)."),
    role: str = typer.Option(
        None,
        "--role",
        help="Staff keys: reader (ask, list), editor (also upload, delete) or admin (everything); default admin, "
        "or the --user's role.",
    ),
    collection: Annotated[
        list[str] | None,
        typer.Option("--collection", "-c", help="Collection the key may use (repeat; required for widget keys)."),
    ] = None,
    user: str = typer.Option(
        None, "--user", help="The staff account (`docqa users list`) the key is for; default: a service."
    ),
    origin: Annotated[
        list[str] | None,
        typer.Option("--origin", help="Web origin allowed to use the key, like https://www.example.com (repeat)."),
    ] = None,
    name: str = typer.Option(None, "--name", help="A label to recognise the key by in `docqa keys list`."),
    as_json: bool = typer.Option(False, "--json", help='Print {"key": ..., "id": ..., ...}.'),
) -> None:
    """Create an API key and print it once (only its hash is stored).

    Examples:
      docqa keys create --scope staff --name ops
      docqa keys create --scope staff --role reader -c support --name helpdesk-bot
      docqa keys create --scope staff --role editor -c support --user bob
      docqa keys create --scope widget --collection support --origin https://www.example.com
      docqa keys create --scope widget -c support -c faq --origin https://a.example --origin https://b.example --json
    """
    from docqa.api.keys import grant_for_user

    collections = tuple(collection or ())
    with _state() as store:
        if user is not None:
            if scope != "staff":
                raise typer.BadParameter("only staff keys are made for a user", param_hint="--user")
            account = store.users.get(user)
            if account is None:
                raise typer.BadParameter(f"no user '{user}'; `docqa users list` shows them", param_hint="--user")
            role, collections = grant_for_user(account, role, collections)  # type: ignore[arg-type]
        key, record = store.keys.create(
            scope, collections=collections, origins=origin or (), name=name, role=role, user=user
        )
        _audit(store, "key_create", record)
    if as_json:
        print(json.dumps({"key": key, **record.as_json()}))
        return
    print(key)
    err.print(
        f"[dim]id {record.id} · {record.scope} · {_role(record)} · "
        f"collections: {', '.join(record.collections) or 'all'} · "
        f"origins: {', '.join(record.origins) or 'any'} — store the key now, it is not shown again[/dim]",
        highlight=False,
    )


def _role(k: ApiKey) -> str:
    return k.role if k.scope == "staff" else "ask only"


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M") if ts else "-"


@app.command("list")
def list_keys(
    all_keys: bool = typer.Option(False, "--all", help="Include revoked keys."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (never the keys themselves)."),
) -> None:
    """List API keys: id, scope, role, user, collections, origins, last use (never the keys, which are not
    stored).

    Examples:
      docqa keys list
      docqa keys list --all --json
    """
    with _state() as store:
        keys = store.keys.list(include_revoked=all_keys)
    if as_json:
        print(json.dumps([k.as_json() for k in keys], indent=2))
        return
    table = Table("id", "scope", "role", "user", "name", "collections", "origins", "created", "last used", "revoked")
    for k in keys:
        table.add_row(
            k.id,
            k.scope,
            _role(k),
            k.user or "",
            k.name or "",
            ", ".join(k.collections) or "all",
            ", ".join(k.origins) or "any",
            _when(k.created_at),
            _when(k.last_used_at),
            _when(k.revoked_at),
        )
    out.print(table)


@app.command("revoke")
def revoke(key_id: str = typer.Argument(..., help="The key's id (from `docqa keys list`) or the key itself.")) -> None:
    """Revoke an API key; a running server refuses it from the next request on.

    Example:
      docqa keys revoke 3f9a1c2b7d4e
    """
    with _state() as store:
        record = store.keys.revoke(key_id)
        _audit(store, "key_revoke", record)
    err.print(f"revoked {record.id} ({record.scope}, {_role(record)})", highlight=False)


def register_commands(root: typer.Typer) -> None:
    """`docqa serve` at the top level, `docqa keys ...` as a group."""
    root.command("serve")(serve)
    root.add_typer(app, name="keys", help="Create, list and revoke API keys (staff and widget).")
