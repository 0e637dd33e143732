"""Parsing in a child process, for threads where SIGALRM cannot interrupt a parser.

The HTTP API's ingest jobs and the staff UI's uploads run ingest off the main thread, where a signal
cannot stop a parser that a pathological file keeps busy. There the parse runs in one long-lived child
process instead (spawned on first use, so its start-up is paid once), and a parse that outlives the
limit, or kills its interpreter, costs that child, never the server.
"""

from __future__ import annotations

import multiprocessing
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from ingest.parse import parse_file
from rag.errors import IngestError
from rag.settings import IngestSettings
from rag.types import ParsedDocument

STARTUP_TIMEOUT_S = 120.0


class ParseTimeout(Exception):
    """The parse took longer than the limit; the child that ran it has been killed."""


class ParseWorker:
    """One child process that parses files on request; thread-safe (one parse at a time)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: Any = None
        self._conn: Connection | None = None

    def parse(self, path: Path, settings: IngestSettings, timeout_s: float) -> ParsedDocument:
        """``parse_file`` in the child; IngestError as it would raise, ParseTimeout past ``timeout_s``."""
        with self._lock:
            conn = self._ensure(path)
            conn.send((str(path), settings.model_dump()))
            if not conn.poll(timeout_s if timeout_s > 0 else None):
                self._kill()
                raise ParseTimeout
            try:
                status, value = conn.recv()
            except (EOFError, OSError):
                self._kill()
                raise IngestError(
                    str(path),
                    "the parser process died while reading this file (it is probably damaged or far too large "
                    "once decompressed); open and re-save it, or export it to PDF",
                ) from None
        if status == "ok":
            return value
        raise IngestError(str(path), value)

    def close(self) -> None:
        with self._lock:
            self._kill()

    def _ensure(self, path: Path) -> Connection:
        if self._proc is None or not self._proc.is_alive():
            self._kill()
            # spawn, not fork: the parent is threaded (uvicorn, Streamlit) and holds loaded models.
            ctx = multiprocessing.get_context("spawn")
            parent, child = ctx.Pipe()
            self._proc = ctx.Process(target=_serve, args=(child,), name="docqa-parse", daemon=True)
            self._proc.start()
            child.close()
            self._conn = parent
            # The limit is for parsing, not for the child's start-up (a second or more of imports).
            try:
                started = parent.poll(STARTUP_TIMEOUT_S) and parent.recv() == ("ready", None)
            except (EOFError, OSError):
                started = False
            if not started:
                self._kill()
                raise IngestError(str(path), "the parser process did not start; see the server log, then retry")
        assert self._conn is not None
        return self._conn

    def _kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.join(timeout=5)
            self._proc = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _serve(conn: Connection) -> None:
    """The child's loop: parse each requested file and send back the document or the reason it failed."""
    conn.send(("ready", None))
    while True:
        try:
            path, settings = conn.recv()
        except (EOFError, OSError):
            return
        try:
            reply: tuple[str, Any] = ("ok", parse_file(Path(path), IngestSettings(**settings)))
        except IngestError as exc:
            reply = ("error", exc.reason)
        except Exception as exc:  # a parser bug: report it for this file, keep serving the others
            reply = ("error", f"the parser failed ({type(exc).__name__}: {exc}); please report this file")
        conn.send(reply)
