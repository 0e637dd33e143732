"""One way to open the staff accounts' and the audit trail's SQLite files: created private (0600), schema
applied, a transaction per use, failures as DocqaError naming the file."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rag.errors import DocqaError


@contextmanager
def private_sqlite(
    path: Path, schema: str, what: str, failing: str, *, wal: bool = False
) -> Iterator[sqlite3.Connection]:
    """A connection to ``path`` inside one transaction. ``what`` names the database in messages ("user
    database"); ``failing`` says what could not be done with it ("used", "written"). A new file is made
    readable by its owner only: it holds password hashes or who did what."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = not path.exists()
    try:
        conn = sqlite3.connect(path, timeout=10)
    except sqlite3.Error as exc:
        raise DocqaError(f"cannot open the {what} {path}: {exc}; check the data directory") from exc
    if fresh:
        os.chmod(path, 0o600)
    conn.row_factory = sqlite3.Row
    try:
        if wal:
            conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(schema)
        with conn:
            yield conn
    except sqlite3.OperationalError as exc:
        raise DocqaError(f"the {what} {path} could not be {failing}: {exc}") from exc
    finally:
        conn.close()
