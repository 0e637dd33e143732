"""The PostgreSQL state store: one database shared by every API replica, so that a key revoked on one is
refused by all at once, rate limits count requests to any of them, a conversation continues on any, and
any answers for a job that another runs.

Every read goes to the database (no cache that could be stale across processes); times that several
processes compare (conversation idleness, bucket refills) come from the database's clock, so replicas
with skewed clocks agree. The tables are created on first use, under an advisory lock, so two processes
starting at once do not race. psycopg 3 and its pool are imported lazily: ``pip install 'docqa[postgres]'``.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from docqa.api.conversations import Conversation
from docqa.api.jobs import MAX_JOBS_KEPT, Job
from docqa.api.keys import ApiKey, KeyLogic, key_from_row
from docqa.auth.audit import AuditEvent, event_from_row
from docqa.auth.audit import write_jsonl as write_audit_jsonl
from docqa.auth.users import User, UserLogic, user_from_row
from rag.errors import ConfigError, DocqaError, MissingDependencyError, StateStoreError
from rag.feedback import FeedbackRecord, check_rating, now_iso, record_from_row, write_jsonl
from rag.settings import Settings, StateSettings
from rag.types import Citation

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

log = logging.getLogger(__name__)

INSTALL = "pip install 'docqa[postgres]' (make setup installs it)"
SCHEMA_LOCK = 0x646F6371  # pg_advisory_xact_lock id ("docq"): one process creates the tables at a time
CLEAN_EVERY_S = 60.0  # how often one process sweeps expired conversations and refilled buckets
NOW = "extract(epoch FROM clock_timestamp())::float8"  # the database's clock, seconds since the epoch

SCHEMA = """
CREATE TABLE IF NOT EXISTS docqa_api_keys (
    id text PRIMARY KEY,
    key_hash text NOT NULL,
    scope text NOT NULL,
    collections text NOT NULL,
    origins text NOT NULL,
    name text,
    created_at float8 NOT NULL,
    revoked_at float8,
    last_used_at float8
);
ALTER TABLE docqa_api_keys ADD COLUMN IF NOT EXISTS role text NOT NULL DEFAULT 'admin';
ALTER TABLE docqa_api_keys ADD COLUMN IF NOT EXISTS user_name text;
CREATE TABLE IF NOT EXISTS docqa_conversations (
    id text PRIMARY KEY,
    key_id text NOT NULL,
    collection text NOT NULL,
    history jsonb NOT NULL,
    last_used float8 NOT NULL
);
CREATE INDEX IF NOT EXISTS docqa_conversations_last_used ON docqa_conversations (last_used);
CREATE TABLE IF NOT EXISTS docqa_rate_buckets (
    limiter text NOT NULL,
    bucket text NOT NULL,
    tokens float8 NOT NULL,
    updated_at float8 NOT NULL,
    allowed boolean NOT NULL,
    PRIMARY KEY (limiter, bucket)
);
CREATE TABLE IF NOT EXISTS docqa_jobs (
    id text PRIMARY KEY,
    collection text NOT NULL,
    record jsonb NOT NULL,
    created_at float8 NOT NULL,
    finished_at float8
);
CREATE INDEX IF NOT EXISTS docqa_jobs_created ON docqa_jobs (created_at);
CREATE TABLE IF NOT EXISTS docqa_feedback (
    seq bigint GENERATED ALWAYS AS IDENTITY,
    id text PRIMARY KEY,
    created_at text NOT NULL,
    updated_at text NOT NULL,
    rating text NOT NULL CHECK (rating IN ('up', 'down')),
    comment text,
    question text NOT NULL,
    answer text NOT NULL,
    citations text NOT NULL,
    collection text,
    model text
);
CREATE INDEX IF NOT EXISTS docqa_feedback_created ON docqa_feedback (created_at, seq);
ALTER TABLE docqa_feedback ADD COLUMN IF NOT EXISTS user_name text;
CREATE TABLE IF NOT EXISTS docqa_users (
    name text PRIMARY KEY,
    password_hash text NOT NULL,
    role text NOT NULL,
    collections text NOT NULL,
    created_at float8 NOT NULL,
    failures integer NOT NULL DEFAULT 0,
    locked_until float8,
    last_sign_in_at float8
);
CREATE TABLE IF NOT EXISTS docqa_audit (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id text NOT NULL UNIQUE,
    at text NOT NULL,
    actor text NOT NULL,
    action text NOT NULL,
    collection text,
    target text,
    outcome text NOT NULL,
    detail text NOT NULL
);
"""


def _psycopg() -> Any:
    try:
        import psycopg
        import psycopg_pool  # noqa: F401  (checked here so the error names both)
    except ImportError as exc:
        raise MissingDependencyError(f"state.backend = 'postgres' needs psycopg 3 and its pool: {INSTALL}") from exc
    return psycopg


def redact_dsn(dsn: str) -> str:
    """The DSN as it may be shown: user, host, port and database, never the password."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(dsn)
    except Exception:  # unparsable: show nothing of it rather than risk the secret
        return "(an unparsable state.postgres_dsn)"
    user = f"{parts['user']}@" if parts.get("user") else ""
    host = parts.get("host") or "localhost"
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{host}{port}/{parts.get('dbname', '')}"


class Database:
    """The connection pool, opened (and the schema created) on first use."""

    def __init__(self, settings: StateSettings) -> None:
        secret = settings.postgres_dsn.get_secret_value().strip() if settings.postgres_dsn else ""
        if not secret:
            raise ConfigError(
                "state.postgres_dsn (DOCQA_STATE_POSTGRES_DSN) is empty but state.backend is 'postgres': set it to "
                "postgresql://USER:PASSWORD@HOST:5432/DB, or set state.backend = 'sqlite'"
            )
        self._psycopg = _psycopg()
        self._dsn = secret
        self.where = redact_dsn(secret)
        password = self._psycopg.conninfo.conninfo_to_dict(secret).get("password")
        self._password = str(password) if password else None
        self.settings = settings
        self._pool: ConnectionPool | None = None
        self._lock = threading.Lock()

    def _failure(self, exc: BaseException, doing: str) -> StateStoreError:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if self._password:
            reason = reason.replace(self._password, "***")
        return StateStoreError(
            f"the PostgreSQL state store at {self.where} (state.postgres_dsn) {doing}: {reason}; "
            "check that the server is up and the DSN, user and password are right"
        )

    def _open(self) -> ConnectionPool:
        from psycopg.rows import dict_row
        from psycopg_pool import ConnectionPool

        psycopg = self._psycopg
        timeout = self.settings.connect_timeout_s
        with self._lock:
            if self._pool is not None:
                return self._pool
            try:
                with psycopg.connect(self._dsn, connect_timeout=max(1, round(timeout))) as conn, conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                    conn.execute(SCHEMA)
            except psycopg.Error as exc:
                raise self._failure(exc, "cannot be used") from None
            pool = ConnectionPool(
                self._dsn,
                min_size=1,
                max_size=self.settings.pool_size,
                kwargs={"autocommit": True, "row_factory": dict_row, "connect_timeout": max(1, round(timeout))},
                timeout=timeout,
                name="docqa-state",
                open=False,
            )
            pool.open(wait=True, timeout=timeout)
            self._pool = pool
            return pool

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        """A pooled connection in autocommit mode whose rows are dicts; failures become StateStoreError."""
        from psycopg_pool import PoolTimeout

        pool = self._pool or self._open()
        try:
            with pool.connection() as conn:
                yield conn
        except (self._psycopg.OperationalError, PoolTimeout) as exc:
            raise self._failure(exc, "failed") from exc

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None


class _Sweeper:
    """Runs a clean-up at most every CLEAN_EVERY_S in this process (a cheap check on the request path)."""

    def __init__(self) -> None:
        self._next = 0.0
        self._lock = threading.Lock()

    def due(self) -> bool:
        now = time.monotonic()
        with self._lock:
            if now < self._next:
                return False
            self._next = now + CLEAN_EVERY_S
            return True


class PostgresKeys(KeyLogic):
    def __init__(self, db: Database) -> None:
        super().__init__()
        self.db = db

    def _insert(self, record: ApiKey, key_hash: str) -> None:
        with self.db.connection() as conn:
            conn.execute(
                "INSERT INTO docqa_api_keys "
                "(id, key_hash, scope, collections, origins, name, created_at, role, user_name) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
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
        with self.db.connection() as conn:
            row = conn.execute("SELECT * FROM docqa_api_keys WHERE id = %s", (key_id,)).fetchone()
        return None if row is None else (key_from_row(row), row["key_hash"])

    def _fetch_all(self) -> list[ApiKey]:
        with self.db.connection() as conn:
            rows = conn.execute("SELECT * FROM docqa_api_keys ORDER BY created_at").fetchall()
        return [key_from_row(r) for r in rows]

    def _mark_revoked(self, key_id: str, at: float) -> ApiKey | None:
        with self.db.connection() as conn:
            row = conn.execute(
                "UPDATE docqa_api_keys SET revoked_at = coalesce(revoked_at, %s) WHERE id = %s RETURNING *",
                (at, key_id),
            ).fetchone()
        return None if row is None else key_from_row(row)

    def _mark_used(self, key_id: str, at: float) -> None:
        with self.db.connection() as conn:
            conn.execute("UPDATE docqa_api_keys SET last_used_at = %s WHERE id = %s", (at, key_id))


class PostgresConversations:
    """Conversations in the database: any replica continues one that another started."""

    def __init__(self, db: Database, ttl_s: float) -> None:
        self.db = db
        self.ttl_s = float(ttl_s)
        self._sweep = _Sweeper()

    def start(self, key_id: str, collection: str, history: Sequence[dict[str, str]] = ()) -> Conversation:
        from psycopg.types.json import Jsonb

        turns = [dict(t) for t in history]
        conv_id = secrets.token_urlsafe(16)
        with self.db.connection() as conn:
            row = conn.execute(
                "INSERT INTO docqa_conversations (id, key_id, collection, history, last_used) "
                f"VALUES (%s, %s, %s, %s, {NOW}) RETURNING last_used",
                (conv_id, key_id, collection, Jsonb(turns)),
            ).fetchone()
            if self._sweep.due():
                conn.execute(f"DELETE FROM docqa_conversations WHERE last_used < {NOW} - %s", (self.ttl_s,))
        return Conversation(conv_id, key_id, collection, turns, row["last_used"])

    def get(self, conversation_id: str, key_id: str, collection: str) -> Conversation | None:
        """Alive, and this key's on this collection: then it is touched and returned; else None."""
        with self.db.connection() as conn:
            row = conn.execute(
                f"UPDATE docqa_conversations SET last_used = {NOW} "
                f"WHERE id = %s AND key_id = %s AND collection = %s AND last_used >= {NOW} - %s "
                "RETURNING history, last_used",
                (conversation_id, key_id, collection, self.ttl_s),
            ).fetchone()
        if row is None:
            return None
        return Conversation(conversation_id, key_id, collection, list(row["history"]), row["last_used"])

    def append(self, conv: Conversation, question: str, answer: str) -> None:
        """Add one turn in one statement (two replicas appending at once both land); a conversation that
        expired while it was answering is stored again, as the client already holds its id."""
        from psycopg.types.json import Jsonb

        turns = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
        with self.db.connection() as conn:
            row = conn.execute(
                "INSERT INTO docqa_conversations AS c (id, key_id, collection, history, last_used) "
                f"VALUES (%s, %s, %s, %s, {NOW}) ON CONFLICT (id) DO UPDATE "
                "SET history = c.history || excluded.history, last_used = excluded.last_used RETURNING last_used",
                (conv.id, conv.key_id, conv.collection, Jsonb(turns)),
            ).fetchone()
        conv.history.extend(turns)
        conv.last_used = row["last_used"]


class PostgresRateLimiter:
    """Token buckets in the database, each take one atomic statement: the row lock serialises requests to
    any replica, so the limit holds for all of them together."""

    # The bucket refilled to now (never past capacity, never backwards if a later take already wrote).
    _REFILLED = "least(%(capacity)s, b.tokens + greatest(0, excluded.updated_at - b.updated_at) * %(rate)s)"
    TAKE = (
        "INSERT INTO docqa_rate_buckets AS b (limiter, bucket, tokens, updated_at, allowed) "
        f"VALUES (%(limiter)s, %(bucket)s, %(capacity)s - 1, {NOW}, true) "
        "ON CONFLICT (limiter, bucket) DO UPDATE SET "
        f"tokens = CASE WHEN {_REFILLED} >= 1 THEN {_REFILLED} - 1 ELSE {_REFILLED} END, "
        f"allowed = {_REFILLED} >= 1, "
        "updated_at = greatest(b.updated_at, excluded.updated_at) "
        "RETURNING allowed, tokens"
    )

    WAIT = (
        f"SELECT least(%(capacity)s, tokens + greatest(0, {NOW} - updated_at) * %(rate)s) AS tokens "
        "FROM docqa_rate_buckets WHERE limiter = %(limiter)s AND bucket = %(bucket)s"
    )

    def __init__(self, db: Database, name: str, per_minute: float, burst: int) -> None:
        self.db = db
        self.name = name
        self.rate = per_minute / 60.0  # tokens per second
        self.capacity = float(max(1, burst))
        self._sweep = _Sweeper()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, key: str) -> float:
        """Spend one token; returns 0 when allowed, else the seconds until a token is available."""
        if not self.enabled:
            return 0.0
        params = {"limiter": self.name, "bucket": key, "capacity": self.capacity, "rate": self.rate}
        with self.db.connection() as conn:
            row = conn.execute(self.TAKE, params).fetchone()
            if self._sweep.due():  # buckets that have refilled carry no information: a widget key makes many
                conn.execute(
                    "DELETE FROM docqa_rate_buckets WHERE limiter = %(limiter)s "
                    f"AND tokens + ({NOW} - updated_at) * %(rate)s >= %(capacity)s",
                    params,
                )
        if row["allowed"]:
            return 0.0
        return (1.0 - row["tokens"]) / self.rate

    def wait(self, key: str) -> float:
        """The seconds until ``take`` would pass (0: it would now), spending nothing."""
        if not self.enabled:
            return 0.0
        params = {"limiter": self.name, "bucket": key, "capacity": self.capacity, "rate": self.rate}
        with self.db.connection() as conn:
            row = conn.execute(self.WAIT, params).fetchone()
        if row is None or row["tokens"] >= 1.0:
            return 0.0
        return (1.0 - row["tokens"]) / self.rate


class PostgresJobRecords:
    """Job records as JSON, written by the replica that runs the job, read by any."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, job: Job) -> None:
        from psycopg.types.json import Jsonb

        with self.db.connection() as conn:
            conn.execute(
                "INSERT INTO docqa_jobs (id, collection, record, created_at, finished_at) VALUES (%s, %s, %s, %s, %s)",
                (job.id, job.collection, Jsonb(job.record()), job.created_at, job.finished_at),
            )
            conn.execute(  # like the memory store: only the newest MAX_JOBS_KEPT finished jobs are remembered
                "DELETE FROM docqa_jobs WHERE finished_at IS NOT NULL AND created_at < "
                "(SELECT created_at FROM docqa_jobs ORDER BY created_at DESC OFFSET %s LIMIT 1)",
                (MAX_JOBS_KEPT,),
            )

    def save(self, job: Job) -> None:
        from psycopg.types.json import Jsonb

        with self.db.connection() as conn:
            conn.execute(
                "UPDATE docqa_jobs SET record = %s, finished_at = %s WHERE id = %s",
                (Jsonb(job.record()), job.finished_at, job.id),
            )

    def get(self, job_id: str) -> Job | None:
        with self.db.connection() as conn:
            row = conn.execute("SELECT record FROM docqa_jobs WHERE id = %s", (job_id,)).fetchone()
        return None if row is None else Job.from_record(row["record"])


class PostgresFeedback:
    """The feedback table of ``rag.feedback``, in the shared database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(
        self,
        *,
        rating: str,
        question: str,
        answer: str,
        citations: Sequence[Citation | dict[str, Any]] = (),
        comment: str | None = None,
        collection: str | None = None,
        model: str | None = None,
        user: str | None = None,
    ) -> FeedbackRecord:
        record = FeedbackRecord.new(
            rating=rating,
            question=question,
            answer=answer,
            citations=citations,
            comment=comment,
            collection=collection,
            model=model,
            user=user,
        )
        with self.db.connection() as conn:
            conn.execute(
                "INSERT INTO docqa_feedback (id, created_at, updated_at, rating, comment, question, answer, "
                "citations, collection, model, user_name) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    record.id,
                    record.created_at,
                    record.created_at,
                    record.rating,
                    record.comment,
                    record.question,
                    record.answer,
                    json.dumps(record.citations, ensure_ascii=False),
                    record.collection,
                    record.model,
                    record.user,
                ),
            )
        return record

    def update(self, feedback_id: str, *, rating: str | None = None, comment: str | None = None) -> FeedbackRecord:
        """Change the rating and/or the comment of a stored verdict (an empty comment clears it)."""
        with self.db.connection() as conn:
            if rating is not None:
                conn.execute(
                    "UPDATE docqa_feedback SET rating = %s, updated_at = %s WHERE id = %s",
                    (check_rating(rating), now_iso(), feedback_id),
                )
            if comment is not None:
                conn.execute(
                    "UPDATE docqa_feedback SET comment = %s, updated_at = %s WHERE id = %s",
                    (comment.strip() or None, now_iso(), feedback_id),
                )
            row = conn.execute("SELECT * FROM docqa_feedback WHERE id = %s", (feedback_id,)).fetchone()
        if row is None:
            raise DocqaError(f"no feedback with id {feedback_id!r}")
        return record_from_row(row)

    def delete(self, feedback_id: str) -> bool:
        with self.db.connection() as conn:
            return conn.execute("DELETE FROM docqa_feedback WHERE id = %s", (feedback_id,)).rowcount > 0

    def get(self, feedback_id: str) -> FeedbackRecord | None:
        with self.db.connection() as conn:
            row = conn.execute("SELECT * FROM docqa_feedback WHERE id = %s", (feedback_id,)).fetchone()
        return record_from_row(row) if row else None

    def list(self, *, rating: str | None = None) -> list[FeedbackRecord]:
        """Every verdict, oldest first (optionally only 'up' or only 'down')."""
        query, params = "SELECT * FROM docqa_feedback", ()
        if rating is not None:
            query, params = query + " WHERE rating = %s", (check_rating(rating),)
        with self.db.connection() as conn:
            rows = conn.execute(query + " ORDER BY created_at, seq", params).fetchall()
        return [record_from_row(r) for r in rows]

    def export_jsonl(self, target: str | Path | IO[str], *, rating: str | None = None) -> int:
        return write_jsonl(self.list(rating=rating), target)


class PostgresUsers(UserLogic):
    """Staff accounts in the shared database: a lockout counted on one replica holds on all."""

    def __init__(self, db: Database, settings: Settings) -> None:
        super().__init__(settings.auth)
        self.db = db

    def _insert(self, user: User, password_hash: str) -> bool:
        with self.db.connection() as conn:
            cur = conn.execute(
                "INSERT INTO docqa_users (name, password_hash, role, collections, created_at) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (name) DO NOTHING",
                (user.name, password_hash, user.role, json.dumps(user.collections), user.created_at),
            )
            return cur.rowcount == 1

    def _fetch(self, name: str) -> tuple[User, str] | None:
        with self.db.connection() as conn:
            row = conn.execute("SELECT * FROM docqa_users WHERE name = %s", (name,)).fetchone()
        return None if row is None else (user_from_row(row), row["password_hash"])

    def _fetch_all(self) -> list[User]:
        with self.db.connection() as conn:
            rows = conn.execute("SELECT * FROM docqa_users ORDER BY name").fetchall()
        return [user_from_row(r) for r in rows]

    def _delete(self, name: str) -> bool:
        with self.db.connection() as conn:
            return conn.execute("DELETE FROM docqa_users WHERE name = %s", (name,)).rowcount > 0

    def _set(self, name: str, **columns: Any) -> User | None:
        assignments = ", ".join(f"{c} = %s" for c in columns)  # column names are ours, never input
        with self.db.connection() as conn:
            row = conn.execute(
                f"UPDATE docqa_users SET {assignments} WHERE name = %s RETURNING *", (*columns.values(), name)
            ).fetchone()
        return None if row is None else user_from_row(row)

    def _record_failure(self, name: str, now: float) -> User | None:
        params = {"max": self.settings.max_failures, "now": now, "lock": self.settings.lockout_s, "name": name}
        with self.db.connection() as conn:
            row = conn.execute(
                "UPDATE docqa_users SET "
                "locked_until = CASE WHEN failures + 1 >= %(max)s THEN %(now)s + %(lock)s ELSE locked_until END, "
                "failures = CASE WHEN failures + 1 >= %(max)s THEN 0 ELSE failures + 1 END "
                "WHERE name = %(name)s RETURNING *",
                params,
            ).fetchone()
        return None if row is None else user_from_row(row)


class PostgresAudit:
    """The audit trail in the shared database: every replica's events in one ordered log."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, actor: str, action: str, **fields: Any) -> AuditEvent:
        event = AuditEvent.new(actor, action, **fields)
        with self.db.connection() as conn:
            conn.execute(
                "INSERT INTO docqa_audit (id, at, actor, action, collection, target, outcome, detail) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                event.row(),
            )
        return event

    def list(self) -> list[AuditEvent]:
        with self.db.connection() as conn:
            rows = conn.execute("SELECT * FROM docqa_audit ORDER BY seq").fetchall()
        return [event_from_row(r) for r in rows]

    def export_jsonl(self, target: str | Path | IO[str]) -> int:
        return write_audit_jsonl(self.list(), target)


class PostgresState:
    """The parts over one pool. Nothing connects until a part is first used."""

    def __init__(self, settings: Settings) -> None:
        self.db = Database(settings.state)
        self.keys = PostgresKeys(self.db)
        self.feedback = PostgresFeedback(self.db)
        self.jobs = PostgresJobRecords(self.db)
        self.users = PostgresUsers(self.db, settings)
        self.audit = PostgresAudit(self.db)

    def conversations(self, ttl_s: float) -> PostgresConversations:
        return PostgresConversations(self.db, ttl_s)

    def rate_limiter(self, name: str, per_minute: float, burst: int) -> PostgresRateLimiter:
        return PostgresRateLimiter(self.db, name, per_minute, burst)

    def close(self) -> None:
        self.db.close()
