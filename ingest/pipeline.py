"""The ingest run: find files, skip what is stored, parse, chunk, embed in batches, commit once.

Incremental by content: the docstore is the manifest (path -> content hash). A file whose hash is
unchanged costs one read; identical content under two paths is embedded once; a changed file reuses
the stored vectors of every chunk whose text did not change. Nothing is visible to readers until the
single atomic commit at the end, so a killed run leaves the previous index as it was. The embedding
itself runs on the engine ``ingest.engine`` names (``ingest.embed_engine``: here, or on Ray Data).
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ingest.chunk import chunk_document
from ingest.embed_engine import EmbedEngine, embed_engine
from ingest.parse import SUPPORTED_SUFFIXES, is_supported, parse_file
from ingest.parse_worker import ParseTimeout, ParseWorker
from rag.embedder import Embedder
from rag.errors import IngestError
from rag.hashing import sha256_file
from rag.settings import Settings
from rag.store import CollectionWriter, index_text, validate_collection_name
from rag.types import ChunkDraft, ParsedDocument


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    chunks: int = 0  # chunks written by this run
    total_chunks: int | None = None  # chunks in the collection after the run
    total_documents: int | None = None
    embedded: int = 0  # chunks that needed the embedder (the rest reused stored vectors)
    failed: list[dict[str, str]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)  # files in folders that are not documents
    documents: list[dict[str, Any]] = field(default_factory=list)  # per parsed document: pages, tables, ...
    seconds: float = 0.0
    generation: str | None = None

    @property
    def ok(self) -> bool:
        return not self.failed

    def as_json(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "chunks": self.chunks,
            "total_chunks": self.total_chunks,
            "total_documents": self.total_documents,
            "embedded": self.embedded,
            "failed": self.failed,
            "skipped": self.skipped,
            "documents": self.documents,
            "seconds": round(self.seconds, 3),
            "generation": self.generation,
        }


class Progress(Protocol):
    """Told about each finished file; the CLI draws a bar from it, tests and --json pass None."""

    def start(self, total_files: int) -> None: ...

    def advance(self, files: int, chunks: int) -> None: ...


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def document_key(path: Path) -> str:
    """The identity of a document in the store: its absolute path."""
    return str(path.resolve())


@dataclass
class Discovered:
    files: list[Path]
    failed: list[dict[str, str]]
    folders: list[Path]
    skipped: list[dict[str, str]]


def discover(paths: list[Path], include: list[str] | None = None, exclude: list[str] | None = None) -> Discovered:
    """Expand files and folders. Hidden files and folders are left out; so are files in folders that are
    not documents (images, styles, scripts: reported as skipped, not failed) and, in folders, files
    that match no ``include`` glob or match an ``exclude`` glob (globs match the name or the path
    relative to the folder). A file named on its own is always taken, or failed when unsupported."""
    found = Discovered([], [], [], [])
    supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
    for path in paths:
        if path.is_dir():
            found.folders.append(path.resolve())
            for root, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(names):
                    if name.startswith("."):
                        continue
                    candidate = Path(root) / name
                    relative = candidate.relative_to(path).as_posix()
                    if not _selected(name, relative, include, exclude):
                        continue
                    if is_supported(candidate):
                        found.files.append(candidate)
                    else:
                        found.skipped.append(
                            {"path": str(candidate), "reason": f"not a document type ('{candidate.suffix or name}')"}
                        )
        elif path.is_file():
            if is_supported(path):
                found.files.append(path)
            else:
                found.failed.append(
                    {"path": str(path), "error": f"unsupported file type '{path.suffix}' (supported: {supported})"}
                )
        else:
            found.failed.append({"path": str(path), "error": "no such file or folder"})
    # One entry per real file, even when given twice or through two routes.
    seen: set[str] = set()
    unique = []
    for f in found.files:
        key = document_key(f)
        if key not in seen:
            seen.add(key)
            unique.append(f)
    found.files = unique
    return found


def _selected(name: str, relative: str, include: list[str] | None, exclude: list[str] | None) -> bool:
    def matches(globs: list[str]) -> bool:
        return any(fnmatch.fnmatch(name, g) or fnmatch.fnmatch(relative, g) for g in globs)

    return (not include or matches(include)) and not (exclude and matches(exclude))


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """SIGALRM-based limit for one parse; main thread only (other threads parse in a ParseWorker)."""
    if seconds <= 0:
        yield
        return

    fired = False

    def _raise(_signum: int, _frame: object) -> None:
        nonlocal fired
        fired = True
        raise ParseTimeout

    previous = signal.signal(signal.SIGALRM, _raise)
    # The timer repeats: a parser library that catches the first exception (one raised inside its
    # callbacks, say) gets another, and a parse that swallowed them all is still reported as too slow.
    signal.setitimer(signal.ITIMER_REAL, seconds, 0.2)
    try:
        yield
    except Exception:
        if fired:
            raise ParseTimeout from None
        raise
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    if fired:
        raise ParseTimeout


@dataclass
class _Pending:
    key: str
    path: Path
    content_hash: str
    doc_type: str
    title: str | None
    size: int
    mtime: float
    chunks: list[ChunkDraft]
    text_hashes: list[str]
    existed: bool


class Ingestor:
    """Runs ingests and removals against one collection at a time."""

    def __init__(self, settings: Settings, embedder: Embedder) -> None:
        self.settings = settings
        self.embedder = embedder
        self._worker: ParseWorker | None = None  # started by the first parse off the main thread

    def _parse(self, path: Path) -> ParsedDocument:
        """Parse under the time limit: a signal on the main thread (the CLI), a killable child process
        elsewhere (the API's job threads, Streamlit's script thread), where no signal can interrupt."""
        limit = self.settings.ingest.parse_timeout_s
        if threading.current_thread() is threading.main_thread():
            with time_limit(limit):
                return parse_file(path, self.settings.ingest)
        if self._worker is None:
            self._worker = ParseWorker()
        return self._worker.parse(path, self.settings.ingest, limit)

    def _writer(self, collection: str, rebuild: bool = False) -> CollectionWriter:
        return CollectionWriter(
            self.settings,
            validate_collection_name(collection),
            model_id=self.embedder.model_id,
            dim=self.embedder.dim,
            rebuild=rebuild,
        )

    def ingest(
        self,
        paths: list[Path],
        collection: str,
        *,
        prune: bool | None = None,
        rebuild: bool = False,
        progress: Progress | None = None,
        on_file: Callable[[str, str], None] | None = None,
        include: list[str] | None = None,
        exclude: list[str] | None = None,
    ) -> IngestReport:
        """Bring the collection in line with ``paths``; see the module docstring for the rules.

        ``on_file(path, outcome)`` is told each file's outcome (added/updated/unchanged/failed).
        """
        started = time.monotonic()
        report = IngestReport()
        prune = self.settings.ingest.prune if prune is None else prune
        found = discover(paths, include, exclude)
        files, folders = found.files, found.folders
        report.failed.extend(found.failed)
        report.skipped.extend(found.skipped)
        if progress:
            progress.start(len(files))
        with self._writer(collection, rebuild) as writer, embed_engine(self.settings, self.embedder) as engine:
            pending: list[_Pending] = []
            seen: set[str] = set()
            for path in files:
                key = document_key(path)
                seen.add(key)
                outcome = self._plan_file(writer, path, key, pending, report)
                if on_file:
                    on_file(key, outcome)
                if progress and outcome != "pending":
                    progress.advance(1, 0)
                if sum(len(p.chunks) for p in pending) >= engine.flush_chunks:
                    self._flush(writer, pending, report, progress, engine)
            self._flush(writer, pending, report, progress, engine)
            if prune:
                for folder in folders:
                    prefix = str(folder) + os.sep
                    for key in writer.document_paths():
                        if key.startswith(prefix) and key not in seen and writer.remove_document(key):
                            report.removed.append(key)
            report.total_documents, report.total_chunks = writer.store.counts()  # what the commit holds
            if report.added or report.updated or report.removed or rebuild:
                report.generation = writer.commit(self.settings.retrieval).generation
        report.seconds = time.monotonic() - started
        return report

    def _plan_file(
        self, writer: CollectionWriter, path: Path, key: str, pending: list[_Pending], report: IngestReport
    ) -> str:
        try:
            stat = path.stat()
            content_hash = sha256_file(path)
        except OSError as exc:
            report.failed.append({"path": key, "error": f"cannot read: {exc.strerror or exc}"})
            return "failed"
        old = writer.document(key)
        if old is not None and old["content_hash"] == content_hash:
            report.unchanged.append(key)
            return "unchanged"
        existed = old is not None
        if writer.has_content(content_hash) or any(p.content_hash == content_hash for p in pending):
            # Same bytes already stored (or queued) under another path: reference them, embed nothing.
            twin = next((p for p in pending if p.content_hash == content_hash), None)
            doc_type = twin.doc_type if twin else SUPPORTED_SUFFIXES.get(path.suffix.lower(), "txt")
            title = twin.title if twin else None
            if twin is not None:
                pending.append(
                    _Pending(key, path, content_hash, doc_type, title, stat.st_size, stat.st_mtime, [], [], existed)
                )
                return "pending"
            writer.put_document(
                path=key,
                content_hash=content_hash,
                doc_type=doc_type,
                title=title,
                size=stat.st_size,
                mtime=stat.st_mtime,
                chunks=None,
            )
            (report.updated if existed else report.added).append(key)
            return "updated" if existed else "added"
        try:
            doc = self._parse(path)
            chunks = chunk_document(doc, self.embedder.count_tokens, self.settings.ingest)
        except IngestError as exc:
            report.failed.append({"path": key, "error": exc.reason})
            return "failed"
        except ParseTimeout:
            report.failed.append(
                {
                    "path": key,
                    "error": f"parsing took longer than {self.settings.ingest.parse_timeout_s:.0f} s; "
                    "split the file or raise DOCQA_INGEST_PARSE_TIMEOUT_S",
                }
            )
            return "failed"
        if not chunks:
            report.failed.append({"path": key, "error": "no text found in the document; is it empty or scanned?"})
            return "failed"
        report.documents.append(
            {
                "path": key,
                **doc.stats,
                "chunks": len(chunks),
                "table_chunks": sum(c.element_type == "Table" for c in chunks),
                "warnings": doc.warnings,
            }
        )
        pending.append(
            _Pending(
                key,
                path,
                content_hash,
                doc.doc_type,
                doc.title,
                stat.st_size,
                stat.st_mtime,
                chunks,
                [text_hash(index_text(c.text, c.heading)) for c in chunks],
                existed,
            )
        )
        return "pending"

    def _flush(
        self,
        writer: CollectionWriter,
        pending: list[_Pending],
        report: IngestReport,
        progress: Progress | None,
        engine: EmbedEngine,
    ) -> None:
        """Embed every queued chunk whose text is not stored yet in one pass (on ``engine``), then write the
        documents."""
        if not pending:
            return
        all_hashes = [h for p in pending for h in p.text_hashes]
        cached = writer.cached_embeddings(all_hashes)
        todo: dict[str, str] = {}
        for p in pending:
            for c, h in zip(p.chunks, p.text_hashes, strict=True):
                if h not in cached and h not in todo:
                    todo[h] = index_text(c.text, c.heading)
        if todo:
            vectors = engine.embed(list(todo.values()))
            cached.update(zip(todo.keys(), vectors, strict=True))
            report.embedded += len(todo)
        for p in pending:
            vectors = np.stack([cached[h] for h in p.text_hashes]) if p.chunks else None
            writer.put_document(
                path=p.key,
                content_hash=p.content_hash,
                doc_type=p.doc_type,
                title=p.title,
                size=p.size,
                mtime=p.mtime,
                chunks=p.chunks or None,
                text_hashes=p.text_hashes,
                vectors=vectors,
            )
            report.chunks += len(p.chunks)
            (report.updated if p.existed else report.added).append(p.key)
        if progress:
            progress.advance(len(pending), sum(len(p.chunks) for p in pending))
        pending.clear()

    def remove(self, paths: list[Path], collection: str) -> IngestReport:
        """Drop documents (a file, or every document under a folder) from the collection."""
        started = time.monotonic()
        report = IngestReport()
        with self._writer(collection) as writer:
            stored = writer.document_paths()
            for path in paths:
                key = document_key(path)
                matches = [k for k in stored if k == key or k.startswith(key + os.sep)]
                if not matches:
                    report.failed.append({"path": str(path), "error": "not in the collection"})
                for k in matches:
                    if writer.remove_document(k):
                        report.removed.append(k)
            report.total_documents, report.total_chunks = writer.store.counts()  # what the commit holds
            if report.removed:
                report.generation = writer.commit(self.settings.retrieval).generation
        report.seconds = time.monotonic() - started
        return report
