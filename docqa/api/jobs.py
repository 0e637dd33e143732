"""Uploaded documents (saved by the services' upload store) ingested by a background worker whose
progress ``GET /v1/jobs/{id}`` reports.

One worker thread runs the jobs in order (ingest is CPU-bound; two at once on a small host only slow
each other), and a per-collection lock keeps removals from racing an ingest in this process. A writer
in another process (a CLI ingest) holds the collection's file lock; the job then waits for it.

A job runs in the process that received the upload; its record (state, progress, each file's outcome) is
written to the state store as it changes, so with the PostgreSQL store any replica answers for it.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from docqa.services import Services
from ingest.uploads import SavedUpload
from rag.errors import CollectionLockedError, DocqaError
from rag.settings import Settings

log = logging.getLogger(__name__)

MAX_JOBS_KEPT = 1000  # finished jobs remembered for GET /v1/jobs/{id}
LOCK_WAIT_S = 600.0  # how long a job waits for another process's ingest of the same collection
LOCK_POLL_S = 1.0


def document_id(path: str) -> str:
    """A stable public id for a stored document (its key is a server path, not for clients)."""
    return hashlib.sha256(path.encode("utf-8")).hexdigest()[:16]


@dataclass
class JobFile:
    name: str
    path: str
    status: str = "queued"  # queued, parsed, added, updated, unchanged, failed
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        out = {"name": self.name, "status": self.status, "document_id": document_id(self.path)}
        if self.error:
            out["error"] = self.error
        return out


@dataclass
class Job:
    id: str
    collection: str
    files: list[JobFile]
    state: str = "queued"  # queued, waiting (for another writer), running, done, failed
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    files_done: int = 0
    chunks: int = 0
    error: str | None = None
    generation: str | None = None

    def as_json(self) -> dict[str, Any]:
        total = len(self.files)
        return {
            "id": self.id,
            "collection": self.collection,
            "state": self.state,
            "progress": {
                "files_total": total,
                "files_done": self.files_done,
                "chunks": self.chunks,
                "fraction": round(self.files_done / total, 3) if total else 1.0,
            },
            "files": [f.as_json() for f in self.files],
            "error": self.error,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }

    def record(self) -> dict[str, Any]:
        """Every field, for a state store to keep (``from_record`` reads it back)."""
        return asdict(self)

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> Job:
        fields = dict(data)
        fields["files"] = [JobFile(**f) for f in fields.get("files", [])]
        return cls(**fields)


class MemoryJobRecords:
    """Job records in this process's memory (the default state store): the newest ``MAX_JOBS_KEPT``
    finished jobs are remembered, and the live objects are the records, so ``save`` has nothing to do."""

    def __init__(self) -> None:
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, job: Job) -> None:
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > MAX_JOBS_KEPT:
                oldest = next(iter(self._jobs.values()))
                if oldest.finished_at is None:
                    break
                self._jobs.popitem(last=False)

    def save(self, job: Job) -> None:
        pass

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)


class JobRecords(Protocol):
    """Where job records live: this process's memory, or the shared state store."""

    def add(self, job: Job) -> None: ...

    def save(self, job: Job) -> None: ...

    def get(self, job_id: str) -> Job | None: ...


class _JobProgress:
    """The Ingestor's progress hooks, written into the job."""

    def __init__(self, job: Job, save: Callable[[Job], None]) -> None:
        self.job = job
        self.save = save

    def start(self, total_files: int) -> None:
        self.job.files_done = 0
        self.save(self.job)

    def advance(self, files: int, chunks: int) -> None:
        self.job.files_done = min(len(self.job.files), self.job.files_done + files)
        self.job.chunks += chunks
        self.save(self.job)


class JobManager:
    def __init__(
        self,
        settings: Settings,
        services: Services,
        on_finish: Callable[[Job], None] | None = None,
        records: JobRecords | None = None,
    ) -> None:
        self.settings = settings
        self.services = services
        self.on_finish = on_finish
        self.records: JobRecords = records if records is not None else MemoryJobRecords()
        self._lock = threading.Lock()
        self._collection_locks: dict[str, threading.Lock] = {}
        self._executor: ThreadPoolExecutor | None = None

    @property
    def executor(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="docqa-ingest")
        return self._executor

    def collection_lock(self, collection: str) -> threading.Lock:
        with self._lock:
            return self._collection_locks.setdefault(collection, threading.Lock())

    # -- jobs ---------------------------------------------------------------------------------------
    def submit(self, collection: str, uploads: list[SavedUpload]) -> Job:
        job = Job(
            id=secrets.token_hex(8),
            collection=collection,
            files=[JobFile(u.name, str(u.path.resolve())) for u in uploads],
        )
        self.records.add(job)
        self.executor.submit(self._run, job)
        return job

    def get(self, job_id: str) -> Job | None:
        """The job's record, wherever it runs (another replica's, with a shared state store)."""
        return self.records.get(job_id)

    def wait(self, job_id: str, timeout_s: float) -> Job | None:
        """Block until the job finished (tests and scripts); returns it, or None if unknown."""
        deadline = time.monotonic() + timeout_s
        while (job := self.get(job_id)) is not None and job.finished_at is None and time.monotonic() < deadline:
            time.sleep(0.05)
        return job

    def _run(self, job: Job) -> None:
        job.started_at = time.time()
        by_path = {f.path: f for f in job.files}

        def on_file(path: str, outcome: str) -> None:
            entry = by_path.get(path)
            if entry is not None:
                entry.status = "parsed" if outcome == "pending" else outcome
                self._save(job)

        try:
            with self.collection_lock(job.collection):
                report = self._ingest_waiting_for_lock(job, on_file)
            for path in report.added:
                by_path[path].status = "added"
            for path in report.updated:
                by_path[path].status = "updated"
            for path in report.unchanged:
                by_path[path].status = "unchanged"
            for failure in report.failed:
                entry = by_path.get(failure["path"])
                if entry is not None:
                    entry.status, entry.error = "failed", failure["error"]
            job.files_done = len(job.files)
            job.generation = report.generation
            job.state = "done" if report.ok else "failed"
            if not report.ok:
                job.error = f"{len(report.failed)} of {len(job.files)} file(s) could not be ingested; see files[]"
        except DocqaError as exc:
            job.state, job.error = "failed", str(exc)
        except Exception as exc:  # a bug: recorded on the job and logged with its traceback, never silent
            log.exception("ingest job %s failed", job.id)
            job.state, job.error = "failed", f"internal error: {exc!r}; see the server log"
        finally:
            job.finished_at = time.time()
            for entry in job.files:
                if entry.status in ("queued", "parsed") and job.state == "failed":
                    entry.status = "failed"
                    entry.error = entry.error or job.error
            self._save(job)
            if self.on_finish:
                self.on_finish(job)

    def _ingest_waiting_for_lock(self, job: Job, on_file: Callable[[str, str], None]):  # -> IngestReport
        deadline = time.monotonic() + LOCK_WAIT_S
        paths = [Path(f.path) for f in job.files]
        while True:
            job.state = "running"
            self._save(job)
            try:
                return self.services.ingestor.ingest(
                    paths, job.collection, prune=False, progress=_JobProgress(job, self._save), on_file=on_file
                )
            except CollectionLockedError:
                if time.monotonic() >= deadline:
                    raise
                job.state = "waiting"
                self._save(job)
                time.sleep(LOCK_POLL_S)

    def _save(self, job: Job) -> None:
        """Write the job's record. A store that fails must not fail the ingest it reports on: the log says
        so, and the next save (at the latest, the final one) catches the record up."""
        try:
            self.records.save(job)
        except Exception:
            log.exception("the record of ingest job %s could not be stored", job.id)

    # -- removal ------------------------------------------------------------------------------------
    def remove_document(self, collection: str, path: str, timeout_s: float) -> None:
        """Drop one document from the index (and its uploaded file, if it came through the API)."""
        lock = self.collection_lock(collection)
        if not lock.acquire(timeout=timeout_s):
            raise CollectionLockedError(
                f"an ingest job is writing collection '{collection}'; retry when it is done (GET /v1/jobs/ID)"
            )
        try:
            report = self.services.ingestor.remove([Path(path)], collection)
        finally:
            lock.release()
        if report.failed:
            raise DocqaError(report.failed[0]["error"])
        self.services.uploads.delete(path, collection)

    def shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)  # the running job commits; queued ones are dropped
            self._executor = None
