"""The audit trail: who did what, when, to which collection or account, and whether it was allowed.

Append-only; ``docqa audit export`` writes it as JSONL. Events name sign-ins (and refusals: wrong password,
locked account, limited address, single sign-on without a role or refused by Streamlit's callback), sign-outs,
uploads, deletes, questions, feedback, account changes and API keys made or revoked (with their role). A
question's text is written only when ``audit.log_questions`` is on: the callers leave it out otherwise
(``access.StaffActions``).
"""

from __future__ import annotations

import getpass
import json
import sqlite3
import time
import uuid
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from docqa.auth.private_db import private_sqlite
from rag.errors import DocqaError
from rag.feedback import write_json_lines
from rag.settings import Settings

ACTIONS = (
    "sign_in",
    "sign_in_failed",
    "sign_in_locked",
    "sign_in_throttled",
    "sign_out",
    "session_expired",
    "ask",
    "feedback",
    "upload",
    "delete",
    "drop_collection",
    "denied",
    "user_add",
    "user_remove",
    "user_set_role",
    "user_set_password",
    "user_unlock",
    "key_create",
    "key_revoke",
)


def cli_actor() -> str:
    """Who runs a command, as the trail names them: ``cli:<os user>``."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"

SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    collection TEXT,
    target TEXT,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class AuditEvent:
    """One line of the trail; ``as_json()`` is the exported line."""

    id: str
    at: str  # ISO 8601, UTC, milliseconds
    actor: str  # the user name; 'cli:<os user>' for commands; '-' when nobody signed in
    action: str
    outcome: str = "ok"  # 'ok', 'refused' or 'failed'
    collection: str | None = None
    target: str | None = None  # a file, an account, a feedback id
    detail: dict[str, Any] = field(default_factory=dict)

    def row(self) -> tuple[Any, ...]:
        """The values of a stored row, in the order both backends insert them (id, at, actor, action,
        collection, target, outcome, detail as JSON)."""
        return (
            self.id, self.at, self.actor, self.action, self.collection, self.target, self.outcome,
            json.dumps(self.detail, ensure_ascii=False),
        )

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def new(
        cls,
        actor: str,
        action: str,
        *,
        outcome: str = "ok",
        collection: str | None = None,
        target: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> AuditEvent:
        if action not in ACTIONS:
            raise DocqaError(f"unknown audit action {action!r}")
        at = datetime.fromtimestamp(time.time(), UTC).isoformat(timespec="milliseconds")
        return cls(uuid.uuid4().hex, at, actor, action, outcome, collection, target, dict(detail or {}))


def event_from_row(row: Any) -> AuditEvent:
    return AuditEvent(
        id=row["id"],
        at=row["at"],
        actor=row["actor"],
        action=row["action"],
        outcome=row["outcome"],
        collection=row["collection"],
        target=row["target"],
        detail=json.loads(row["detail"]),
    )


def write_jsonl(events: Sequence[AuditEvent], target: str | Path | IO[str]) -> int:
    """One JSON object per line, oldest first; a path is replaced atomically."""
    return write_json_lines([e.as_json() for e in events], target)


class AuditLog:
    """The trail in ``<state_dir>/audit.sqlite`` (the default backend), created on first use."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def for_settings(cls, settings: Settings) -> AuditLog:
        return cls(settings.state_dir / "audit.sqlite")

    def _connect(self) -> AbstractContextManager[sqlite3.Connection]:
        return private_sqlite(self.path, SCHEMA, "audit database", "written", wal=True)

    def record(self, actor: str, action: str, **fields: Any) -> AuditEvent:
        event = AuditEvent.new(actor, action, **fields)
        with self._connect() as conn:
            conn.execute(
                "INSERT INTO audit (id, at, actor, action, collection, target, outcome, detail) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                event.row(),
            )
        return event

    def list(self) -> list[AuditEvent]:
        """Every event, oldest first."""
        with self._connect() as conn:
            rows = conn.execute("SELECT * FROM audit ORDER BY seq").fetchall()
        return [event_from_row(r) for r in rows]

    def export_jsonl(self, target: str | Path | IO[str]) -> int:
        return write_jsonl(self.list(), target)
