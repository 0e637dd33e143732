"""`docqa users add|list|remove|set-role|set-password|unlock` (staff accounts for the UI) and
`docqa audit export` (the audit trail as JSONL). Every account change is written to the audit trail as
``cli:<os user>``."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import typer

from docqa.auth.audit import cli_actor as _actor
from docqa.auth.users import ROLES
from docqa.state import StateStore, open_state
from rag.settings import load_settings

users_app = typer.Typer(no_args_is_help=True, add_completion=False)
audit_app = typer.Typer(no_args_is_help=True, add_completion=False)


@contextmanager
def _state() -> Iterator[StateStore]:
    store = open_state(load_settings())
    try:
        yield store
    finally:
        store.close()


def _role(value: str | None) -> str | None:
    if value is not None and value not in ROLES:
        raise typer.BadParameter(f"use one of {', '.join(ROLES)}")
    return value


def _collections(value: str | None) -> list[str] | None:
    return None if value is None else [c.strip() for c in value.split(",") if c.strip()]


def _password(confirm: bool = True) -> str:
    """From the terminal (asked twice, not echoed), or the first line of standard input when it is piped."""
    if not sys.stdin.isatty():
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise typer.BadParameter("no password on standard input", param_hint="stdin")
        return line
    return typer.prompt("Password", hide_input=True, confirmation_prompt=confirm)


@users_app.command("add")
def add(
    name: str = typer.Argument(..., help="Sign-in name."),
    role: str = typer.Option(..., "--role", callback=_role, help="reader, editor or admin."),
    collections: str = typer.Option(
        None, "--collections", help="Comma-separated collections the account may use (default: all)."
    ),
) -> None:
    """Create a staff account for the UI; the password is asked for (or read from standard input).

    Roles: reader (ask, read sources, give feedback), editor (also upload and delete documents),
    admin (also accounts, every collection). Readers and editors use the collections granted.

    Examples:
      docqa users add alice --role admin
      docqa users add bob --role editor --collections support,legal
      printf '%s\\n' "$PASSWORD" | docqa users add carol --role reader
    """
    password = _password()
    with _state() as store:
        user = store.users.add(name, password, role, _collections(collections) or ())
        store.audit.record(
            _actor(), "user_add", target=name, detail={"role": user.role, "collections": list(user.collections)}
        )
    scope = ", ".join(user.collections) or "all collections"
    print(f"added {user.name} ({user.role}; {scope})", file=sys.stderr)


@users_app.command("list")
def list_users(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the accounts with role, collections and last sign-in (never a password or hash).

    Example:
      docqa users list
    """
    with _state() as store:
        users = store.users.list()
    if as_json:
        print(json.dumps([u.as_json() for u in users], indent=2))
        return
    if not users:
        print("no accounts yet: `docqa users add NAME --role admin`", file=sys.stderr)
    for u in users:
        last = datetime.fromtimestamp(u.last_sign_in_at).strftime("%Y-%m-%d %H:%M") if u.last_sign_in_at else "never"
        locked = f"  LOCKED for {round(u.locked_for())} s" if u.locked_for() else ""
        print(f"{u.name:<20} {u.role:<7} {', '.join(u.collections) or '(all collections)':<30} last: {last}{locked}")


@users_app.command("remove")
def remove(name: str = typer.Argument(..., help="Sign-in name.")) -> None:
    """Delete an account; a session it has open ends at its next click.

    Example:
      docqa users remove bob
    """
    with _state() as store:
        store.users.remove(name)
        store.audit.record(_actor(), "user_remove", target=name)
    print(f"removed {name}", file=sys.stderr)


@users_app.command("set-role")
def set_role(
    name: str = typer.Argument(..., help="Sign-in name."),
    role: str = typer.Argument(..., callback=_role, help="reader, editor or admin."),
    collections: str = typer.Option(
        None, "--collections", help="Replace the granted collections (comma-separated; '*' for all)."
    ),
) -> None:
    """Change an account's role (and, with --collections, what it may use); applies at its next click.

    Examples:
      docqa users set-role bob admin
      docqa users set-role carol editor --collections support
    """
    with _state() as store:
        user = store.users.set_role(name, role, _collections(collections))
        store.audit.record(
            _actor(), "user_set_role", target=name, detail={"role": user.role, "collections": list(user.collections)}
        )
    print(f"{user.name} is now {user.role} ({', '.join(user.collections) or 'all collections'})", file=sys.stderr)


@users_app.command("set-password")
def set_password(name: str = typer.Argument(..., help="Sign-in name.")) -> None:
    """Set a new password (asked for, or read from standard input); also unlocks the account.

    Example:
      docqa users set-password bob
    """
    password = _password()
    with _state() as store:
        store.users.set_password(name, password)
        store.audit.record(_actor(), "user_set_password", target=name)
    print(f"password of {name} changed", file=sys.stderr)


@users_app.command("unlock")
def unlock(name: str = typer.Argument(..., help="Sign-in name.")) -> None:
    """Lift a lock after too many wrong passwords, before auth.lockout_s runs out.

    Example:
      docqa users unlock bob
    """
    with _state() as store:
        store.users.unlock(name)
        store.audit.record(_actor(), "user_unlock", target=name)
    print(f"{name} unlocked", file=sys.stderr)


@audit_app.command("export")
def export(out: str = typer.Option(..., "--out", "-o", help="JSONL file to write ('-' for standard output).")) -> None:
    """Write the audit trail, oldest first, one JSON object per line.

    Each line: {"id", "at" (UTC), "actor", "action", "outcome", "collection", "target", "detail"}.
    Actions: sign_in, sign_in_failed, sign_in_locked, sign_in_throttled, sign_out, session_expired, ask,
    feedback, upload, delete, drop_collection, denied, user_add, user_remove, user_set_role,
    user_set_password, user_unlock, key_create, key_revoke. A question's text is there only when
    audit.log_questions is on.

    Examples:
      docqa audit export --out audit.jsonl
      docqa audit export --out - | jq 'select(.action == "sign_in_failed")'
    """
    with _state() as store:
        if out == "-":
            store.audit.export_jsonl(sys.stdout)
        else:
            count = store.audit.export_jsonl(Path(out))
            print(f"wrote {count} audit event(s) to {out}", file=sys.stderr)


def register_commands(root: typer.Typer) -> None:
    """`docqa users ...` and `docqa audit ...`."""
    root.add_typer(users_app, name="users", help="Staff accounts for the UI: add, list, remove, set-role.")
    root.add_typer(audit_app, name="audit", help="Export the audit trail (sign-ins, uploads, deletes, ...).")
