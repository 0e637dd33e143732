"""API keys with scopes, stored hashed in SQLite under ``settings.state_dir``.

A key reads ``dq_<id>_<secret>``: the public id finds the row, the secret is 32 random bytes, and only
the SHA-256 of the whole key is stored, compared in constant time. The plain key is shown once, at
creation. A staff key carries a role of the staff UI's (reader, editor, admin: ``docqa.auth.users``) and may
name the user it was made for; keys stored before roles existed read as admin, as they could do everything.
Every check reads the database, so a revocation from the CLI takes effect at once in a running server (and,
on the PostgreSQL state store, in every replica).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from docqa.auth.users import Role, User, check_role, role_at_least
from rag.errors import ConfigError, DocqaError
from rag.settings import Settings
from rag.store import validate_collection_name

Scope = Literal["staff", "widget"]
SCOPES: tuple[Scope, ...] = ("staff", "widget")

_KEY = re.compile(r"^dq_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
ORIGINS_CACHE_S = 2.0  # how stale the CORS origin list may be (it is read on every cross-origin request)

SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    key_hash TEXT NOT NULL,
    scope TEXT NOT NULL,
    collections TEXT NOT NULL,
    origins TEXT NOT NULL,
    name TEXT,
    created_at REAL NOT NULL,
    revoked_at REAL,
    last_used_at REAL,
    role TEXT NOT NULL DEFAULT 'admin',
    user_name TEXT
);
"""
# Columns added since the first release: a table from before gets them, old rows read as admin keys.
MIGRATIONS = {"role": "TEXT NOT NULL DEFAULT 'admin'", "user_name": "TEXT"}


def key_store_path(settings: Settings) -> Path:
    return settings.state_dir / "keys.sqlite"


def normalize_origin(origin: str) -> str:
    """``scheme://host[:port]`` in lower case, default ports dropped: what browsers send as Origin."""
    raw = origin.strip()
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        raise DocqaError(
            f"invalid origin '{origin}': give scheme, host and optional port, like https://www.example.com"
        )
    if parts.query or parts.fragment or parts.username:
        raise DocqaError(f"invalid origin '{origin}': no path, query or credentials, like https://www.example.com")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    default = {"http": 80, "https": 443}[parts.scheme]
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ApiKey:
    """A stored key (never the secret): what a request is allowed to do."""

    id: str
    scope: Scope
    collections: tuple[str, ...]  # empty: every collection (staff keys only)
    origins: tuple[str, ...]  # browser origins it may be used from; empty: no browser restriction (staff)
    name: str | None
    created_at: float
    revoked_at: float | None = None
    last_used_at: float | None = None
    role: Role = "admin"  # staff keys: what the staff UI's role allows; widget keys are readers
    user: str | None = None  # the staff account it was made for; None: a service

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def can_use(self, collection: str) -> bool:
        return not self.collections or collection in self.collections

    def at_least(self, role: Role) -> bool:
        return role_at_least(self.role, role)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "scope": self.scope,
            "role": self.role,
            "user": self.user,
            "collections": list(self.collections),
            "origins": list(self.origins),
            "name": self.name,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
            "last_used_at": self.last_used_at,
        }


def key_from_row(row: Any) -> ApiKey:
    """A stored row (SQLite or PostgreSQL, read by column name) as a record."""
    return ApiKey(
        id=row["id"],
        scope=row["scope"],
        collections=tuple(json.loads(row["collections"])),
        origins=tuple(json.loads(row["origins"])),
        name=row["name"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
        last_used_at=row["last_used_at"],
        role=row["role"] if row["scope"] == "staff" else "reader",
        user=row["user_name"],
    )


def grant_for_user(user: User, role: Role | None, collections: Sequence[str]) -> tuple[Role, tuple[str, ...]]:
    """The role and collections of a key made for ``user``: the user's own unless narrower ones are asked
    for. A key never carries more than its user may do, so it cannot lend them rights they lack."""
    wanted = user.role if role is None else check_role(role)
    if not role_at_least(user.role, wanted):
        raise ConfigError(f"user '{user.name}' is {user.role}: a key made for them cannot be {wanted}")
    cols = tuple(collections) or user.collections
    if user.collections and user.role != "admin":
        outside = [c for c in cols if c not in user.collections]
        if outside:
            raise ConfigError(
                f"user '{user.name}' is not granted collection(s) {', '.join(outside)}; "
                f"theirs: {', '.join(user.collections)}"
            )
    return wanted, cols


class KeyLogic:
    """What every key store does the same way (validation, the key's shape, constant-time checks, throttled
    last-use writes, the cached origin list); a backend supplies the five storage calls below."""

    def __init__(self) -> None:
        self._origins: tuple[float, frozenset[str]] | None = None
        self._lock = threading.Lock()
        self._touched: dict[str, float] = {}

    # -- storage, per backend -------------------------------------------------------------------------
    def _insert(self, record: ApiKey, key_hash: str) -> None:
        raise NotImplementedError

    def _fetch(self, key_id: str) -> tuple[ApiKey, str] | None:
        """The record and the stored hash."""
        raise NotImplementedError

    def _fetch_all(self) -> list[ApiKey]:
        """Every record, oldest first."""
        raise NotImplementedError

    def _mark_revoked(self, key_id: str, at: float) -> ApiKey | None:
        """Set revoked_at unless already set; the record after, or None if there is no such key."""
        raise NotImplementedError

    def _mark_used(self, key_id: str, at: float) -> None:
        raise NotImplementedError

    # -- the store --------------------------------------------------------------------------------------
    def create(
        self,
        scope: str,
        *,
        collections: Sequence[str] = (),
        origins: Sequence[str] = (),
        name: str | None = None,
        role: str | None = None,
        user: str | None = None,
    ) -> tuple[str, ApiKey]:
        """Store a new key; returns the plain key (shown once) and its record. A staff key's role defaults
        to admin (what a staff key could always do); ``user`` is recorded as given (the CLI checks it
        against the user store, ``grant_for_user``)."""
        if scope not in SCOPES:
            raise ConfigError(f"unknown scope '{scope}': use one of {', '.join(SCOPES)}")
        if scope == "widget" and role not in (None, "reader"):
            raise ConfigError("a widget key has no role to choose: it may only ask; give --role to staff keys")
        key_role: Role = check_role(role or "admin") if scope == "staff" else "reader"
        cols = tuple(dict.fromkeys(validate_collection_name(c) for c in collections))
        oris = tuple(dict.fromkeys(normalize_origin(o) for o in origins))
        if scope == "widget" and not cols:
            raise ConfigError("a widget key needs at least one --collection it may ask")
        if scope == "widget" and not oris:
            raise ConfigError(
                "a widget key needs at least one --origin: the web site(s) that embed the widget, "
                "like --origin https://www.example.com"
            )
        key_id = secrets.token_hex(6)
        key = f"dq_{key_id}_{secrets.token_urlsafe(32)}"
        record = ApiKey(key_id, scope, cols, oris, name, time.time(), role=key_role, user=user)  # type: ignore[arg-type]
        self._insert(record, hash_key(key))
        self._origins = None
        return key, record

    def verify(self, key: str) -> ApiKey | None:
        """The active key record for a presented key, or None (unknown, malformed or revoked)."""
        match = _KEY.match(key)
        if not match:
            return None
        found = self._fetch(match.group(1))
        if found is None or not hmac.compare_digest(found[1], hash_key(key)):
            return None
        record = found[0]
        if not record.active:
            return None
        self._touch(record.id)
        return record

    def _touch(self, key_id: str) -> None:
        """Record last use, at most once a minute per key (a write per request would serialise them)."""
        now = time.time()
        with self._lock:
            if now - self._touched.get(key_id, 0.0) < 60:
                return
            self._touched[key_id] = now
        self._mark_used(key_id, now)

    def list(self, include_revoked: bool = False) -> list[ApiKey]:
        keys = self._fetch_all()
        return keys if include_revoked else [k for k in keys if k.active]

    def revoke(self, key_or_id: str) -> ApiKey:
        """Revoke by id (as `docqa keys list` shows it) or by the full key."""
        match = _KEY.match(key_or_id.strip())
        key_id = match.group(1) if match else key_or_id.strip()
        record = self._mark_revoked(key_id, time.time())
        if record is None:
            raise DocqaError(f"no API key with id '{key_id}'; `docqa keys list` shows the ids")
        self._origins = None
        return record

    def known_origins(self) -> frozenset[str]:
        """Origins listed by any active key: the only ones that get CORS headers."""
        cached = self._origins
        now = time.monotonic()
        if cached is not None and now - cached[0] < ORIGINS_CACHE_S:
            return cached[1]
        origins: set[str] = set()
        for key in self.list():
            origins.update(key.origins)
        frozen = frozenset(origins)
        self._origins = (now, frozen)
        return frozen


class KeyStore(KeyLogic):
    """The key table in ``<state_dir>/keys.sqlite`` (the default backend). Cheap to construct; the file is
    created on first write."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self._migrated = False

    @classmethod
    def for_settings(cls, settings: Settings) -> KeyStore:
        return cls(key_store_path(settings))

    @contextmanager
    def _connect(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        if not write and not self.path.exists():
            # Reading before any key exists: an empty in-memory table, no file created as a side effect.
            conn = sqlite3.connect(":memory:")
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fresh = not self.path.exists()
            conn = sqlite3.connect(self.path, timeout=10)
            if fresh:
                os.chmod(self.path, 0o600)  # hashes only, but still nobody else's business
        conn.row_factory = sqlite3.Row
        try:
            conn.executescript(SCHEMA)
            if not self._migrated:
                self._migrate(conn)
            with conn:
                yield conn
        finally:
            conn.close()

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Add the columns a table from an earlier release lacks (SQLite has no ADD COLUMN IF NOT EXISTS)."""
        have = {row["name"] for row in conn.execute("PRAGMA table_info(api_keys)")}
        for column, decl in MIGRATIONS.items():
            if column in have:
                continue
            try:
                with conn:
                    conn.execute(f"ALTER TABLE api_keys ADD COLUMN {column} {decl}")
            except sqlite3.OperationalError as exc:  # another process added it a moment ago
                if "duplicate column" not in str(exc):
                    raise
        self._migrated = self.path.exists()

    def _insert(self, record: ApiKey, key_hash: str) -> None:
        with self._connect(write=True) as conn:
            conn.execute(
                "INSERT INTO api_keys (id, key_hash, scope, collections, origins, name, created_at, role, user_name) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.id,
                    key_hash,
                    record.scope,
                    json.dumps(record.collections),
                    json.dumps(record.origins),
                    record.name,
                    record.created_at,
                    record.role,
                    record.user,
                ),
            )

    def _fetch(self, key_id: str) -> tuple[ApiKey, str] | None:
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM api_keys WHERE id = ?", (key_id,)).fetchone()
        return None if row is None else (key_from_row(row), row["key_hash"])

    def _fetch_all(self) -> list[ApiKey]:
        with self._connect() as conn:
            rows = conn.execute("SELECT * FROM api_keys ORDER BY created_at").fetchall()
        return [key_from_row(r) for r in rows]

    def _mark_revoked(self, key_id: str, at: float) -> ApiKey | None:
        with self._connect(write=True) as conn:
            conn.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (at, key_id))
            row = conn.execute("SELECT * FROM api_keys WHERE id = ?", (key_id,)).fetchone()
        return None if row is None else key_from_row(row)

    def _mark_used(self, key_id: str, at: float) -> None:
        with self._connect(write=True) as conn:
            conn.execute("UPDATE api_keys SET last_used_at = ? WHERE id = ?", (at, key_id))
