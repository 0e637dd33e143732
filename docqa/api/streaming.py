"""Running the blocking answer pipeline for an async server, and server-sent-event framing.

The pipeline is a plain generator doing blocking work (embedding, HTTP to the model server). A
``PipelineRun`` drives it in its own thread and hands each event to the event loop through a queue, so
the loop keeps serving other requests. ``cancel()`` (a client that went away) stops it at the next event
and closes the generator, which closes the model server stream, so nobody keeps generating for nobody.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

from rag.types import Answer, Citation, Evidence

log = logging.getLogger(__name__)

KEEPALIVE_S = 15.0  # an SSE comment this often keeps proxies from closing a quiet stream

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Connection": "keep-alive"}

_END = object()


class Workers:
    """Daemon threads kept between answers, started only when none is idle. ``Thread.start`` waits until
    the new thread runs: under load, with the cores busy and the interpreter lock contended, that wait held
    the event loop for hundreds of milliseconds per answer. Daemons, so a model call in flight never holds
    up the process's exit."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._idle = 0
        self._threads = 0
        self._lock = threading.Lock()

    @property
    def idle(self) -> int:
        return self._idle

    @property
    def busy(self) -> int:
        """Jobs running or waiting for a worker."""
        with self._lock:
            return self._threads - self._idle

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            grow = self._idle == 0
            if grow:
                self._threads += 1
            else:
                self._idle -= 1
        self._jobs.put(job)
        if grow:
            threading.Thread(target=self._work, name=self.name, daemon=True).start()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                job()
            except BaseException:  # a job reports its own errors; the worker lives on
                log.exception("a %s job failed", self.name)
            with self._lock:
                self._idle += 1


WORKERS = Workers("docqa-answer")  # the API process's answer threads


def sse(event: str | None, data: Any) -> bytes:
    """One server-sent event; ``data`` is JSON on a single line (json.dumps escapes newlines)."""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


SSE_KEEPALIVE = b": keep-alive\n\n"


class PipelineRun:
    """One pipeline generator running in a worker thread; events come out with ``await next_event()``."""

    def __init__(self, events: Iterator[dict[str, Any]], workers: Workers | None = None) -> None:
        self._events = events
        self._workers = workers or WORKERS
        self._queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._stop = threading.Event()
        self._done = threading.Event()
        self.finished = False
        self.drafted = 0  # the model's pieces held back so far (``progress`` events; verify mode)

    def start(self) -> PipelineRun:
        self._workers.submit(self._drive)
        return self

    def _put(self, item: tuple[str, Any]) -> None:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: the server is shutting down; nobody is listening
            self._stop.set()

    def _drive(self) -> None:
        try:
            for event in self._events:
                if self._stop.is_set():
                    break
                if event["event"] == "progress" and self.drafted:
                    # Counted here, not handed over: a wake-up of the event loop per generated piece, for
                    # fifty streams at once, kept it from serving anything else (the first one still goes:
                    # it says the model has started).
                    self.drafted += 1
                    continue
                self.drafted += event["event"] == "progress"
                self._put(("event", event))
            self._put(("end", _END))
        except BaseException as exc:  # handed to the awaiting request, which re-raises or reports it
            self._put(("error", exc))
        finally:
            close = getattr(self._events, "close", None)
            try:
                if close is not None:
                    close()
            finally:
                self._done.set()

    async def next_event(self, timeout: float | None = None) -> dict[str, Any] | None:
        """The next event; None at the end; raises what the pipeline raised; TimeoutError on ``timeout``."""
        kind, value = await asyncio.wait_for(self._queue.get(), timeout)
        if kind == "event":
            return value
        self.finished = True
        if kind == "error":
            raise value
        return None

    def cancel(self) -> None:
        self._stop.set()

    def is_alive(self) -> bool:
        """Whether a worker thread still runs the pipeline (tests check a cancel really stops it)."""
        return not self._done.is_set()


def _file_name(path: str) -> str:
    return path.replace("\\", "/").rsplit("/", 1)[-1]


def citation_json(c: Citation, *, public: bool) -> dict[str, Any]:
    """A citation for the client; ``public`` (widget keys) shows the file name, not the server path."""
    data = c.as_json()
    if public:
        data["source"] = _file_name(c.source)
    return data


def evidence_json(e: Evidence, *, public: bool) -> dict[str, Any]:
    """A supporting span: its passage number, file, page, chunk and character offsets in the chunk's text."""
    data = e.as_json()
    if public:
        data["source"] = _file_name(e.source)
    return data


def answer_json(answer: Answer, *, public: bool) -> dict[str, Any]:
    """Like ``docqa ask --json``: answer, citations, evidence, grounded, mode, timings, declined, model."""
    data = answer.as_json()
    data["citations"] = [citation_json(c, public=public) for c in answer.citations]
    data["evidence"] = [evidence_json(e, public=public) for e in answer.evidence]
    return data
