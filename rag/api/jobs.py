"""Uploaded documents: saved under ``state_dir/uploads/<collection>/`` with a safe, unique name, then
ingested by a background worker whose progress ``GET /v1/jobs/{id}`` reports.

One worker thread runs the jobs in order (ingest is CPU-bound; two at once on a small host only slow
each other), and a per-collection lock keeps removals from racing an ingest in this process. A writer
in another process (a CLI ingest) holds the collection's file lock; the job then waits for it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import shutil
import threading
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from rag.errors import CollectionLockedError, DocqaError
from rag.services import Services
from rag.settings import Settings

log = logging.getLogger(__name__)

MAX_NAME_CHARS = 120  # file names longer than this are shortened (the suffix is kept)
MAX_JOBS_KEPT = 1000  # finished jobs remembered for GET /v1/jobs/{id}
LOCK_WAIT_S = 600.0  # how long a job waits for another process's ingest of the same collection
LOCK_POLL_S = 1.0
COPY_BLOCK = 1 << 20


def safe_filename(name: str | None) -> str:
    """A file name that is only a name: no directories, no leading dots, no control or shell characters."""
    name = unicodedata.normalize("NFKC", name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch if (ch.isalnum() or ch in "._- ()") else "_" for ch in name)
    name = re.sub(r"\s+", " ", name).strip(" ._")
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        stem, suffix = name, ""
    suffix = suffix[:16].lower()
    stem = stem[: MAX_NAME_CHARS - len(suffix) - 1].strip(" ._") or "upload"
    return f"{stem}.{suffix}" if suffix else stem


def document_id(path: str) -> str:
    """A stable public id for a stored document (its key is a server path, not for clients)."""
    return hashlib.sha256(path.encode("utf-8")).hexdigest()[:16]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(COPY_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class SavedUpload:
    name: str  # the name it was stored under (after sanitising and de-duplication)
    original: str  # the name the client sent (shown back, never used as a path)
    path: Path
    outcome: str  # "new", "same" (identical file already there) or "replaced"


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


class _JobProgress:
    """The Ingestor's progress hooks, written into the job."""

    def __init__(self, job: Job) -> None:
        self.job = job

    def start(self, total_files: int) -> None:
        self.job.files_done = 0

    def advance(self, files: int, chunks: int) -> None:
        self.job.files_done = min(len(self.job.files), self.job.files_done + files)
        self.job.chunks += chunks


class JobManager:
    def __init__(self, settings: Settings, services: Services, on_finish: Callable[[Job], None] | None = None) -> None:
        self.settings = settings
        self.services = services
        self.on_finish = on_finish
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._collection_locks: dict[str, threading.Lock] = {}
        self._names = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None

    @property
    def executor(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="docqa-ingest")
        return self._executor

    def uploads_dir(self, collection: str) -> Path:
        return self.settings.state_dir / "uploads" / collection

    def collection_lock(self, collection: str) -> threading.Lock:
        with self._lock:
            return self._collection_locks.setdefault(collection, threading.Lock())

    # -- uploads ------------------------------------------------------------------------------------
    def save_upload(self, collection: str, original: str | None, stream: IO[bytes], *, replace: bool) -> SavedUpload:
        """Copy an uploaded stream into the collection's upload folder under a safe name.

        Same name and same bytes: nothing new is written. Same name, other bytes: a new name
        (``report-2.pdf``) unless ``replace``, which makes the upload a new version of that document.
        """
        folder = self.uploads_dir(collection)
        folder.mkdir(parents=True, exist_ok=True)
        name = safe_filename(original)
        tmp = folder / f".upload-{secrets.token_hex(8)}.part"
        digest = hashlib.sha256()
        try:
            with open(tmp, "wb") as out:
                for block in iter(lambda: stream.read(COPY_BLOCK), b""):
                    digest.update(block)
                    out.write(block)
                out.flush()
                os.fsync(out.fileno())
            with self._names:
                target, outcome = self._choose_target(folder, name, digest.hexdigest(), replace)
                if outcome == "same":
                    tmp.unlink()
                else:
                    os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return SavedUpload(target.name, original or "", target, outcome)

    @staticmethod
    def _choose_target(folder: Path, name: str, digest: str, replace: bool) -> tuple[Path, str]:
        stem, dot, suffix = name.rpartition(".")
        if not dot:
            stem, suffix = name, ""
        n = 1
        while True:
            candidate = folder / (name if n == 1 else f"{stem}-{n}{'.' + suffix if suffix else ''}")
            if not candidate.exists():
                return candidate, "new"
            if _sha256(candidate) == digest:
                return candidate, "same"
            if replace and n == 1:
                return candidate, "replaced"
            n += 1

    # -- jobs ---------------------------------------------------------------------------------------
    def submit(self, collection: str, uploads: list[SavedUpload]) -> Job:
        job = Job(
            id=secrets.token_hex(8),
            collection=collection,
            files=[JobFile(u.name, str(u.path.resolve())) for u in uploads],
        )
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > MAX_JOBS_KEPT:
                oldest = next(iter(self._jobs.values()))
                if oldest.finished_at is None:
                    break
                self._jobs.popitem(last=False)
        self.executor.submit(self._run, job)
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

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
            if self.on_finish:
                self.on_finish(job)

    def _ingest_waiting_for_lock(self, job: Job, on_file: Callable[[str, str], None]):  # -> IngestReport
        deadline = time.monotonic() + LOCK_WAIT_S
        paths = [Path(f.path) for f in job.files]
        while True:
            job.state = "running"
            try:
                return self.services.ingestor.ingest(
                    paths, job.collection, prune=False, progress=_JobProgress(job), on_file=on_file
                )
            except CollectionLockedError:
                if time.monotonic() >= deadline:
                    raise
                job.state = "waiting"
                time.sleep(LOCK_POLL_S)

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
        uploads = self.uploads_dir(collection).resolve()
        stored = Path(path)
        if stored.is_relative_to(uploads) and stored.is_file():
            stored.unlink()

    def drop_uploads(self, collection: str) -> None:
        shutil.rmtree(self.uploads_dir(collection), ignore_errors=True)

    def shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)  # the running job commits; queued ones are dropped
            self._executor = None
