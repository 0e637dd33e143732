"""Local staff accounts for the UI: a name, a role, the collections granted, an argon2 password hash.

Passwords are hashed with argon2id (argon2-cffi's defaults, rehashed on sign-in when those change). Wrong
passwords are counted per account in the store, so the count holds across UI processes and replicas:
``auth.max_failures`` in a row lock the account for ``auth.lockout_s``, during which even the right password
is refused. A failure for an unknown name costs the same hash as a real one, so timing tells nothing.
``UserLogic`` holds what every backend does the same way; a backend supplies the storage calls.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from docqa.auth.errors import AccountLockedError, SignInError
from docqa.auth.private_db import private_sqlite
from rag.errors import ConfigError, DocqaError
from rag.settings import AuthSettings, Settings
from rag.store import validate_collection_name

Role = Literal["reader", "editor", "admin"]
ROLES: tuple[Role, ...] = ("reader", "editor", "admin")
_RANK = {role: i for i, role in enumerate(ROLES)}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
WRONG = "wrong name or password"

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    collections TEXT NOT NULL,
    created_at REAL NOT NULL,
    failures INTEGER NOT NULL DEFAULT 0,
    locked_until REAL,
    last_sign_in_at REAL
);
"""


def check_role(role: str) -> Role:
    if role not in ROLES:
        raise ConfigError(f"unknown role '{role}': use one of {', '.join(ROLES)}")
    return role  # type: ignore[return-value]


def role_at_least(role: Role, minimum: Role) -> bool:
    """The one ordering of roles (reader < editor < admin), for accounts, OIDC groups and staff API keys."""
    return _RANK[role] >= _RANK[minimum]


def highest_role(roles: list[Role]) -> Role:
    """The most a person may do of several roles (their OIDC groups'), by the same ordering."""
    return max(roles, key=_RANK.__getitem__)


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ConfigError(
            f"invalid user name '{name}': letters, digits and . _ @ - (up to 64, starting with a letter or digit)"
        )
    return name


@dataclass(frozen=True)
class User:
    """A stored account (never the hash): what its holder may do."""

    name: str
    role: Role
    collections: tuple[str, ...]  # empty: every collection
    created_at: float
    failures: int = 0
    locked_until: float | None = None
    last_sign_in_at: float | None = None

    def at_least(self, role: Role) -> bool:
        return role_at_least(self.role, role)

    def can_read(self, collection: str) -> bool:
        return self.role == "admin" or not self.collections or collection in self.collections

    def can_edit(self, collection: str) -> bool:
        return self.at_least("editor") and self.can_read(collection)

    def locked_for(self, now: float | None = None) -> float:
        """Seconds until the account takes sign-ins again; 0 when it is not locked."""
        if self.locked_until is None:
            return 0.0
        return max(0.0, self.locked_until - (time.time() if now is None else now))

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role,
            "collections": list(self.collections),
            "created_at": self.created_at,
            "locked_until": self.locked_until if self.locked_for() else None,
            "last_sign_in_at": self.last_sign_in_at,
        }


def user_from_row(row: Any) -> User:
    """A stored row (SQLite or PostgreSQL, read by column name) as a record."""
    return User(
        name=row["name"],
        role=row["role"],
        collections=tuple(json.loads(row["collections"])),
        created_at=row["created_at"],
        failures=row["failures"],
        locked_until=row["locked_until"],
        last_sign_in_at=row["last_sign_in_at"],
    )


class UserLogic:
    """Validation, hashing, lockout: the same for every backend, which supplies the storage calls below."""

    def __init__(self, settings: AuthSettings) -> None:
        self.settings = settings
        self._hasher = PasswordHasher()
        self._dummy = self._hasher.hash("docqa: a hash to spend the same time on unknown names")

    # -- storage, per backend -------------------------------------------------------------------------
    def _insert(self, user: User, password_hash: str) -> bool:
        """False when the name is taken."""
        raise NotImplementedError

    def _fetch(self, name: str) -> tuple[User, str] | None:
        raise NotImplementedError

    def _fetch_all(self) -> list[User]:
        raise NotImplementedError

    def _delete(self, name: str) -> bool:
        raise NotImplementedError

    def _set(self, name: str, **columns: Any) -> User | None:
        """Set the given columns; the record after, or None if there is no such user."""
        raise NotImplementedError

    def _record_failure(self, name: str, now: float) -> User | None:
        """Count one wrong password in one statement; at ``max_failures`` lock until now + lockout_s and
        start counting again."""
        raise NotImplementedError

    # -- the store --------------------------------------------------------------------------------------
    def add(self, name: str, password: str, role: str, collections: Sequence[str] = ()) -> User:
        check_name(name)
        self._check_password(password)
        user = User(check_name(name), check_role(role), self._collections(collections), time.time())
        if not self._insert(user, self._hasher.hash(password)):
            raise DocqaError(f"user '{name}' exists already; `docqa users set-role` changes a role")
        return user

    def get(self, name: str) -> User | None:
        found = self._fetch(name)
        return found[0] if found else None

    def list(self) -> list[User]:
        return self._fetch_all()

    def remove(self, name: str) -> None:
        if not self._delete(name):
            raise self._unknown(name)

    def set_role(self, name: str, role: str, collections: Sequence[str] | None = None) -> User:
        """A new role (and, when given, a new list of collections); takes effect on the user's next click."""
        columns: dict[str, Any] = {"role": check_role(role)}
        if collections is not None:
            columns["collections"] = json.dumps(self._collections(collections))
        return self._set(name, **columns) or self._raise(self._unknown(name))

    def set_password(self, name: str, password: str) -> User:
        """A new password; also unlocks the account."""
        self._check_password(password)
        hashed = self._hasher.hash(password)
        return self._set(name, password_hash=hashed, failures=0, locked_until=None) or self._raise(self._unknown(name))

    def unlock(self, name: str) -> User:
        return self._set(name, failures=0, locked_until=None) or self._raise(self._unknown(name))

    def authenticate(self, name: str, password: str) -> User:
        """The user, when the password is right and the account not locked; else SignInError (or its
        subclass AccountLockedError, which says for how long)."""
        now = time.time()
        found = self._fetch(name) if _NAME.match(name) else None
        if found is None:
            self._verify(self._dummy, password)
            raise SignInError(WRONG)
        user, hashed = found
        if user.locked_for(now):
            raise AccountLockedError(name, user.locked_for(now))
        if not self._verify(hashed, password):
            after = self._record_failure(name, now)
            if after is not None and after.locked_for(now):
                raise AccountLockedError(name, after.locked_for(now))
            raise SignInError(WRONG)
        columns: dict[str, Any] = {"failures": 0, "locked_until": None, "last_sign_in_at": now}
        if self._hasher.check_needs_rehash(hashed):
            columns["password_hash"] = self._hasher.hash(password)
        return self._set(name, **columns) or user

    # -- helpers ----------------------------------------------------------------------------------------
    def _verify(self, hashed: str, password: str) -> bool:
        try:
            return self._hasher.verify(hashed, password)
        except (VerificationError, InvalidHashError):
            return False

    def _check_password(self, password: str) -> None:
        if len(password) < self.settings.min_password_chars:
            raise ConfigError(
                f"the password is too short: use at least {self.settings.min_password_chars} characters "
                "(auth.min_password_chars)"
            )

    @staticmethod
    def _collections(collections: Sequence[str]) -> tuple[str, ...]:
        names = [c.strip() for c in collections if c.strip() and c.strip() != "*"]
        return tuple(dict.fromkeys(validate_collection_name(c) for c in names))

    @staticmethod
    def _unknown(name: str) -> DocqaError:
        return DocqaError(f"no user '{name}'; `docqa users list` shows them")

    @staticmethod
    def _raise(exc: DocqaError) -> User:
        raise exc


class UserStore(UserLogic):
    """The users table in ``<state_dir>/users.sqlite`` (the default backend), created on first use."""

    def __init__(self, path: Path, settings: AuthSettings) -> None:
        super().__init__(settings)
        self.path = path

    @classmethod
    def for_settings(cls, settings: Settings) -> UserStore:
        return cls(settings.state_dir / "users.sqlite", settings.auth)

    def _connect(self) -> AbstractContextManager[sqlite3.Connection]:
        return private_sqlite(self.path, SCHEMA, "user database", "used")

    def _insert(self, user: User, password_hash: str) -> bool:
        with self._connect() as conn:
            cur = conn.execute(
                "INSERT OR IGNORE INTO users (name, password_hash, role, collections, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (user.name, password_hash, user.role, json.dumps(user.collections), user.created_at),
            )
            return cur.rowcount == 1

    def _fetch(self, name: str) -> tuple[User, str] | None:
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
        return None if row is None else (user_from_row(row), row["password_hash"])

    def _fetch_all(self) -> list[User]:
        with self._connect() as conn:
            rows = conn.execute("SELECT * FROM users ORDER BY name").fetchall()
        return [user_from_row(r) for r in rows]

    def _delete(self, name: str) -> bool:
        with self._connect() as conn:
            return conn.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount > 0

    def _set(self, name: str, **columns: Any) -> User | None:
        assignments = ", ".join(f"{c} = ?" for c in columns)  # column names are ours, never input
        with self._connect() as conn:
            row = conn.execute(
                f"UPDATE users SET {assignments} WHERE name = ? RETURNING *", (*columns.values(), name)
            ).fetchone()
        return None if row is None else user_from_row(row)

    def _record_failure(self, name: str, now: float) -> User | None:
        with self._connect() as conn:
            row = conn.execute(
                "UPDATE users SET "
                "locked_until = CASE WHEN failures + 1 >= :max THEN :now + :lock ELSE locked_until END, "
                "failures = CASE WHEN failures + 1 >= :max THEN 0 ELSE failures + 1 END "
                "WHERE name = :name RETURNING *",
                {"max": self.settings.max_failures, "now": now, "lock": self.settings.lockout_s, "name": name},
            ).fetchone()
        return None if row is None else user_from_row(row)
