"""Staff feedback on answers: thumbs up/down and a comment, kept in SQLite (the default state store;
``docqa.state`` has the shared PostgreSQL one) with the question, the answer and its sources, and exported
as JSONL for fine-tuning (good answers are ``rating == "up"``).

One row per rated answer: changing the rating or adding a comment later updates that row, so an
export never holds two contradicting verdicts on the same answer. Each call opens its own
connection, so the Streamlit session threads and the API workers can share one store.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal

from rag.errors import DocqaError
from rag.settings import Settings
from rag.types import Citation

Rating = Literal["up", "down"]
RATINGS: tuple[str, ...] = ("up", "down")

SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    rating TEXT NOT NULL CHECK (rating IN ('up', 'down')),
    comment TEXT,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    citations TEXT NOT NULL,
    collection TEXT,
    model TEXT,
    user_name TEXT
);
CREATE INDEX IF NOT EXISTS feedback_created ON feedback(created_at);
"""


@dataclass
class FeedbackRecord:
    """One verdict; ``as_json()`` is the JSONL line the fine-tuning module reads."""

    id: str
    created_at: str  # ISO 8601, UTC
    rating: Rating
    comment: str | None
    question: str
    answer: str
    citations: list[dict[str, Any]] = field(default_factory=list)
    collection: str | None = None
    model: str | None = None
    user: str | None = None  # the staff member who rated it (None: before sign-in existed, or the API)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def new(
        cls,
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
        """A fresh verdict, checked and normalised the same way by every store."""
        return cls(
            id=uuid.uuid4().hex,
            created_at=now_iso(),
            rating=check_rating(rating),
            comment=(comment or "").strip() or None,
            question=question,
            answer=answer,
            citations=[citation_json(c) for c in citations],
            collection=collection,
            model=model,
            user=user,
        )


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def check_rating(rating: str) -> Rating:
    if rating not in RATINGS:
        raise DocqaError(f"feedback rating must be 'up' or 'down', not {rating!r}")
    return rating  # type: ignore[return-value]


def citation_json(c: Citation | dict[str, Any]) -> dict[str, Any]:
    return c.as_json() if isinstance(c, Citation) else dict(c)


class FeedbackStore:
    """The feedback table in ``<state_dir>/feedback.sqlite`` (created on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._prepared = False  # WAL, the schema and the user column: once per store, not per connection
        self._prepare_lock = threading.Lock()

    @classmethod
    def for_settings(cls, settings: Settings) -> FeedbackStore:
        return cls(settings.state_dir / "feedback.sqlite")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=10.0)
        except (OSError, sqlite3.Error) as exc:
            raise DocqaError(f"cannot open the feedback database {self.path}: {exc}; check the data directory") from exc
        conn.row_factory = sqlite3.Row
        try:
            conn.execute("PRAGMA synchronous=FULL")  # a stored verdict survives a power cut
            if not self._prepared:
                # Once, by one thread: writers racing to switch the journal mode and migrate the table on a
                # new file failed with "database is locked".
                with self._prepare_lock:
                    if not self._prepared:
                        conn.execute("PRAGMA journal_mode=WAL")
                        conn.executescript(SCHEMA)
                        columns = {r["name"] for r in conn.execute("PRAGMA table_info(feedback)")}
                        if "user_name" not in columns:  # a store from before sign-in
                            conn.execute("ALTER TABLE feedback ADD COLUMN user_name TEXT")
                        self._prepared = True
            with conn:
                yield conn
        except sqlite3.OperationalError as exc:  # locked for too long, disk full, read-only file
            raise DocqaError(f"the feedback database {self.path} could not be written: {exc}") from exc
        finally:
            conn.close()

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
        with self._connect() as conn:
            conn.execute(
                "INSERT INTO feedback (id, created_at, updated_at, rating, comment, question, answer, citations, "
                "collection, model, user_name) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        with self._connect() as conn:
            if rating is not None:
                conn.execute(
                    "UPDATE feedback SET rating = ?, updated_at = ? WHERE id = ?",
                    (check_rating(rating), now_iso(), feedback_id),
                )
            if comment is not None:
                conn.execute(
                    "UPDATE feedback SET comment = ?, updated_at = ? WHERE id = ?",
                    (comment.strip() or None, now_iso(), feedback_id),
                )
            row = conn.execute("SELECT * FROM feedback WHERE id = ?", (feedback_id,)).fetchone()
        if row is None:
            raise DocqaError(f"no feedback with id {feedback_id!r}")
        return self._record(row)

    def delete(self, feedback_id: str) -> bool:
        """Withdraw a verdict (the rater un-clicked the thumb); returns whether one was stored."""
        with self._connect() as conn:
            return conn.execute("DELETE FROM feedback WHERE id = ?", (feedback_id,)).rowcount > 0

    def get(self, feedback_id: str) -> FeedbackRecord | None:
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM feedback WHERE id = ?", (feedback_id,)).fetchone()
        return self._record(row) if row else None

    def list(self, *, rating: str | None = None) -> list[FeedbackRecord]:
        """Every verdict, oldest first (optionally only 'up' or only 'down')."""
        query = "SELECT * FROM feedback"
        params: tuple[str, ...] = ()
        if rating is not None:
            query += " WHERE rating = ?"
            params = (check_rating(rating),)
        with self._connect() as conn:
            rows = conn.execute(query + " ORDER BY created_at, rowid", params).fetchall()
        return [self._record(r) for r in rows]

    def export_jsonl(self, target: str | Path | IO[str], *, rating: str | None = None) -> int:
        """Write one JSON object per line; returns how many. A path is replaced atomically."""
        return write_jsonl(self.list(rating=rating), target)

    @staticmethod
    def _record(row: Any) -> FeedbackRecord:
        return record_from_row(row)


def record_from_row(row: Any) -> FeedbackRecord:
    """A stored row (SQLite or PostgreSQL, read by column name) as a record."""
    return FeedbackRecord(
        id=row["id"],
        created_at=row["created_at"],
        rating=row["rating"],
        comment=row["comment"],
        question=row["question"],
        answer=row["answer"],
        citations=json.loads(row["citations"]),
        collection=row["collection"],
        model=row["model"],
        user=row["user_name"],
    )


def write_jsonl(records: Sequence[FeedbackRecord], target: str | Path | IO[str]) -> int:
    """The export format, whichever store the records come from; a path is replaced atomically."""
    return write_json_lines([r.as_json() for r in records], target)


def write_json_lines(rows: Sequence[dict[str, Any]], target: str | Path | IO[str]) -> int:
    """One JSON object per line (UTF-8 as written, not escaped); a path is replaced atomically (written
    beside it, synced, renamed), so an export that fails halfway leaves the previous file whole."""
    lines = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    if isinstance(target, str | Path):
        path = Path(target)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(lines)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    else:
        target.write(lines)
    return len(rows)


def read_jsonl(path: Path) -> list[FeedbackRecord]:
    """Read an export back (what the fine-tuning module does); blank lines are skipped."""
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                out.append(FeedbackRecord(**json.loads(line)))
    return out
