"""The collection store: an SQLite docstore, a FAISS index and a BM25 index, committed atomically.

Layout under ``<data_dir>/index/<collection>/``::

    CURRENT          name of the committed generation, swapped with an atomic rename
    .lock            flock held by the one writer
    g000007/         one committed generation: docstore.sqlite, vectors.faiss, bm25/, meta.json

A writer copies the current docstore into a new generation directory, applies its changes there,
rebuilds the vector and BM25 indexes from the stored embeddings and texts, fsyncs everything and
only then points CURRENT at it. A writer killed at any moment leaves CURRENT on the previous,
complete generation; the next writer deletes the debris. Readers open whatever CURRENT names and
reload when it changes, so a running service keeps answering from the old index during an ingest.
A committed generation never changes, so any number of readers, on this machine or others sharing
the directory, may read it; superseded generations are deleted after ``index.keep_generations`` newer
ones and, with ``index.keep_superseded_s``, not before they have been superseded that long.
"""

from __future__ import annotations

import copy
import errno
import fcntl
import json
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.errors import CollectionLockedError, CollectionNotFoundError, DocqaError, IndexMismatchError
from rag.lexical import BM25Index, Vocabulary
from rag.settings import IndexSettings, RetrievalSettings, Settings
from rag.types import ChunkDraft, Filters, StoredChunk
from rag.vector_index import FaissIndex

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    path TEXT PRIMARY KEY,
    content_hash TEXT NOT NULL,
    doc_type TEXT NOT NULL,
    title TEXT,
    size INTEGER NOT NULL,
    mtime REAL NOT NULL,
    ingested_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_hash ON documents(content_hash);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    content_hash TEXT NOT NULL,
    ordinal INTEGER NOT NULL,
    text TEXT NOT NULL,
    text_hash TEXT NOT NULL,
    page INTEGER,
    page_end INTEGER,
    heading TEXT,
    element_type TEXT NOT NULL,
    n_tokens INTEGER NOT NULL,
    embedding BLOB NOT NULL,
    page_label TEXT
);
CREATE INDEX IF NOT EXISTS chunks_hash ON chunks(content_hash, ordinal);
CREATE INDEX IF NOT EXISTS chunks_text_hash ON chunks(text_hash);
"""

_NAME_OK = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def validate_collection_name(name: str) -> str:
    if not name or len(name) > 64 or name.startswith(".") or not set(name) <= _NAME_OK:
        raise DocqaError(
            f"invalid collection name '{name}': use 1-64 letters, digits, '-', '_' or '.', not starting with '.'"
        )
    return name


def index_text(text: str, heading: str | None) -> str:
    """What the embedder and BM25 see: the section heading gives a chunk its context."""
    if heading and not text.startswith(heading):
        return f"{heading}\n{text}"
    return text


LOAD_ATTEMPTS = 5  # a reader loading a generation that a writer prunes meanwhile moves on to the newer one


@dataclass(frozen=True)
class DocumentInfo:
    path: str
    content_hash: str
    doc_type: str
    title: str | None
    size: int
    mtime: float
    ingested_at: float
    chunks: int


@dataclass(frozen=True)
class CollectionInfo:
    name: str
    documents: int
    chunks: int
    model: str
    dim: int
    generation: str
    committed_at: float


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(path: Path) -> None:
    for root, _dirs, files in os.walk(path):
        for name in files:
            fd = os.open(Path(root) / name, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(root))


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def acquire_lock(paths: CollectionPaths, timeout_s: float) -> int:
    """Take the collection's writer lock (flock, released by the kernel if the process dies)."""
    paths.root.mkdir(parents=True, exist_ok=True)
    fd = os.open(paths.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                os.close(fd)
                raise
            if time.monotonic() >= deadline:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise CollectionLockedError(
                    f"collection '{paths.name}' is being written by another process (pid {holder}). "
                    "Wait for it to finish, or set DOCQA_INDEX_LOCK_TIMEOUT_S to wait automatically."
                ) from None
            time.sleep(0.2)
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


def release_lock(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


class CollectionPaths:
    def __init__(self, index_dir: Path, name: str) -> None:
        self.name = validate_collection_name(name)
        self.root = index_dir / name

    @property
    def current_file(self) -> Path:
        return self.root / "CURRENT"

    @property
    def lock_file(self) -> Path:
        return self.root / ".lock"

    def current(self) -> str | None:
        try:
            value = self.current_file.read_text().strip()
        except FileNotFoundError:
            return None
        return value or None

    def generations(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and p.name.startswith("g"))


def _row_to_chunk(row: sqlite3.Row, sources: list[str], doc_type: str | None) -> StoredChunk:
    return StoredChunk(
        id=row["id"],
        content_hash=row["content_hash"],
        ordinal=row["ordinal"],
        text=row["text"],
        page=row["page"],
        page_end=row["page_end"],
        heading=row["heading"],
        element_type=row["element_type"],
        sources=sources,
        doc_type=doc_type,
        page_label=row["page_label"],
    )


class _Docstore:
    """Queries shared by the reader and the writer over one SQLite connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        conn.row_factory = sqlite3.Row
        self.conn = conn
        self.lock = threading.Lock()
        # Generations written before page labels existed have no such column: read it as NULL.
        has_label = any(r["name"] == "page_label" for r in conn.execute("PRAGMA table_info(chunks)"))
        self.chunk_columns = "id, content_hash, ordinal, text, page, page_end, heading, element_type, " + (
            "page_label" if has_label else "NULL AS page_label"
        )

    def meta(self) -> dict[str, str]:
        with self.lock:
            return {r["key"]: r["value"] for r in self.conn.execute("SELECT key, value FROM meta")}

    def counts(self) -> tuple[int, int]:
        with self.lock:
            docs = self.conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
            chunks = self.conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        return int(docs), int(chunks)

    def sources_by_hash(self, hashes: Iterable[str]) -> dict[str, tuple[list[str], str]]:
        hashes = list(set(hashes))
        out: dict[str, tuple[list[str], str]] = {}
        with self.lock:
            for i in range(0, len(hashes), 500):
                part = hashes[i : i + 500]
                rows = self.conn.execute(
                    f"SELECT path, content_hash, doc_type FROM documents WHERE content_hash IN "
                    f"({','.join('?' * len(part))}) ORDER BY path",
                    part,
                )
                for r in rows:
                    paths, _ = out.setdefault(r["content_hash"], ([], r["doc_type"]))
                    paths.append(r["path"])
        return out

    def chunks(self, ids: Sequence[int]) -> dict[int, StoredChunk]:
        ids = [int(i) for i in ids]
        rows: list[sqlite3.Row] = []
        with self.lock:
            for i in range(0, len(ids), 500):
                part = ids[i : i + 500]
                rows.extend(
                    self.conn.execute(
                        f"SELECT {self.chunk_columns} FROM chunks WHERE id IN ({','.join('?' * len(part))})",
                        part,
                    )
                )
        sources = self.sources_by_hash(r["content_hash"] for r in rows)
        return {r["id"]: _row_to_chunk(r, *sources.get(r["content_hash"], ([], None))) for r in rows}

    def neighbours(self, chunk: StoredChunk, before: int, after: int) -> list[StoredChunk]:
        """Chunks of the same document around ``chunk``, in document order (itself included)."""
        with self.lock:
            rows = list(
                self.conn.execute(
                    f"SELECT {self.chunk_columns} FROM chunks "
                    "WHERE content_hash = ? AND ordinal BETWEEN ? AND ? ORDER BY ordinal",
                    (chunk.content_hash, chunk.ordinal - before, chunk.ordinal + after),
                )
            )
        return [_row_to_chunk(r, chunk.sources, chunk.doc_type) for r in rows]

    def embeddings(self, ids: Sequence[int], dim: int) -> dict[int, np.ndarray]:
        ids = [int(i) for i in ids]
        out: dict[int, np.ndarray] = {}
        with self.lock:
            for i in range(0, len(ids), 500):
                part = ids[i : i + 500]
                for r in self.conn.execute(
                    f"SELECT id, embedding FROM chunks WHERE id IN ({','.join('?' * len(part))})", part
                ):
                    out[r["id"]] = np.frombuffer(r["embedding"], dtype=np.float32, count=dim)
        return out

    def allowed_ids(self, filters: Filters) -> np.ndarray:
        clauses, params = [], []
        if filters.source_glob:
            clauses.append("d.path GLOB ?")
            params.append(filters.source_glob)
        if filters.doc_types:
            clauses.append(f"d.doc_type IN ({','.join('?' * len(filters.doc_types))})")
            params.extend(filters.doc_types)
        where = " AND ".join(clauses) or "1"
        with self.lock:
            rows = self.conn.execute(
                f"SELECT DISTINCT c.id FROM chunks c JOIN documents d ON d.content_hash = c.content_hash WHERE {where}",
                params,
            ).fetchall()
        return np.array(sorted(r[0] for r in rows), dtype=np.int64)

    def documents(self) -> list[DocumentInfo]:
        with self.lock:
            rows = self.conn.execute(
                "SELECT d.*, (SELECT COUNT(*) FROM chunks c WHERE c.content_hash = d.content_hash) AS n "
                "FROM documents d ORDER BY d.path"
            ).fetchall()
        return [
            DocumentInfo(
                path=r["path"],
                content_hash=r["content_hash"],
                doc_type=r["doc_type"],
                title=r["title"],
                size=r["size"],
                mtime=r["mtime"],
                ingested_at=r["ingested_at"],
                chunks=r["n"],
            )
            for r in rows
        ]

    def document(self, path: str) -> sqlite3.Row | None:
        with self.lock:
            return self.conn.execute("SELECT * FROM documents WHERE path = ?", (path,)).fetchone()


@dataclass(frozen=True)
class _Generation:
    """One committed generation, loaded: swapped into a reader whole, so a search never mixes two."""

    name: str
    meta: dict
    docstore: _Docstore
    vectors: FaissIndex
    bm25: BM25Index


class CollectionReader:
    """The read side of one collection; ``refresh()`` picks up a newer committed generation.

    Callers use the methods below; the docstore, vector index and BM25 index behind them are private, so
    the storage can change without touching retrieval, the API, the UI or fine-tuning. Each call reads
    one loaded generation; ``snapshot()`` pins one for a whole question while other threads refresh."""

    def __init__(self, settings: Settings, name: str, *, expected_model: str | None = None) -> None:
        self.paths = CollectionPaths(settings.index_dir, name)
        self.index_settings: IndexSettings = settings.index
        self.expected_model = expected_model
        self._lock = threading.RLock()
        self._gen: _Generation | None = None
        if self.paths.current() is None:
            raise CollectionNotFoundError(name, [c.name for c in list_collections(settings)])
        self.refresh()

    @property
    def name(self) -> str:
        return self.paths.name

    @property
    def generation(self) -> str | None:
        return self._gen.name if self._gen is not None else None

    @property
    def meta(self) -> dict:
        assert self._gen is not None
        return self._gen.meta

    def refresh(self) -> bool:
        """Load the committed generation if it changed; returns whether it did."""
        current = self.paths.current()
        if current is None:
            raise CollectionNotFoundError(self.name)
        if current == self.generation:
            return False
        with self._lock:
            for _ in range(LOAD_ATTEMPTS):
                if current == self.generation:
                    return False
                try:
                    loaded = self._load(current)
                except (OSError, sqlite3.Error, RuntimeError):  # RuntimeError: FAISS cannot read the file
                    newer = self.paths.current()
                    if newer is None:
                        raise CollectionNotFoundError(self.name) from None
                    if newer == current:
                        raise  # not a race with a writer: the committed generation itself is unreadable
                    current = newer  # pruned while it was being opened, after newer commits: load the latest
                    continue
                self._gen = loaded  # one assignment: a concurrent call sees the old generation or the new one
                return True
        raise DocqaError(
            f"collection '{self.name}' changed {LOAD_ATTEMPTS} times while it was being loaded; try again."
        )

    def _load(self, name: str) -> _Generation:
        gen_dir = self.paths.root / name
        meta = json.loads((gen_dir / "meta.json").read_text())
        if self.expected_model and meta["model"] != self.expected_model:
            raise IndexMismatchError(
                f"collection '{self.name}' was built with embedding model '{meta['model']}', but "
                f"'{self.expected_model}' is configured. Set DOCQA_EMBEDDER_MODEL='{meta['model']}' or "
                f"rebuild it with `docqa ingest PATH --collection {self.name} --rebuild`."
            )
        # immutable=1: a committed generation never changes, so SQLite takes no locks and looks for no
        # journal (fewer round trips, and no lock traffic when the index is on NFS).
        uri = f"file:{gen_dir / 'docstore.sqlite'}?mode=ro&immutable=1"
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
        try:
            docstore = _Docstore(conn)  # reads the schema: the file is open before the indexes load
            vectors = FaissIndex.load(gen_dir / "vectors.faiss", self.index_settings)
            bm25 = BM25Index.load(gen_dir / "bm25")
        except BaseException:
            conn.close()
            raise
        return _Generation(name, meta, docstore, vectors, bm25)

    def snapshot(self) -> CollectionReader:
        """This reader as loaded now: a copy that a later ``refresh()`` of this one leaves alone, so one
        question reads one generation throughout (chunk ids are only meaningful within a generation)."""
        with self._lock:
            return copy.copy(self)

    @property
    def dim(self) -> int:
        return int(self.meta["dim"])

    @property
    def model(self) -> str:
        return str(self.meta["model"])

    def info(self) -> CollectionInfo:
        gen = self._loaded
        return _info(self.name, gen.name, gen.meta)

    # -- documents and chunks --------------------------------------------------------------------
    @property
    def _loaded(self) -> _Generation:
        assert self._gen is not None
        return self._gen

    def documents(self) -> list[DocumentInfo]:
        """Every stored document, by path, with its chunk count."""
        return self._loaded.docstore.documents()

    def chunks(self, ids: Sequence[int]) -> dict[int, StoredChunk]:
        """The stored chunks with these ids (unknown ids are left out), each with every path it is stored under."""
        return self._loaded.docstore.chunks(ids)

    def chunk_ids(self, filters: Filters | None = None) -> np.ndarray:
        """Sorted ids of the chunks of documents that pass ``filters`` (all documents' chunks without)."""
        return self._loaded.docstore.allowed_ids(filters or Filters())

    def embeddings(self, ids: Sequence[int]) -> dict[int, np.ndarray]:
        """The stored vectors of these chunks."""
        gen = self._loaded
        return gen.docstore.embeddings(ids, int(gen.meta["dim"]))

    def counts(self) -> dict[str, int]:
        """Rows in each part of the generation: a consistent one has as many vectors and BM25 rows as chunks."""
        gen = self._loaded
        documents, chunks = gen.docstore.counts()
        return {"documents": documents, "chunks": chunks, "vectors": gen.vectors.ntotal, "bm25": len(gen.bm25)}

    # -- search ----------------------------------------------------------------------------------
    def search_dense(
        self, vector: np.ndarray, k: int, allowed_ids: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """(chunk id, cosine) of the ``k`` nearest chunks, among ``allowed_ids`` when given."""
        return self._loaded.vectors.search(vector, k, allowed_ids)

    def vocabulary(self) -> Vocabulary:
        """Every term the collection's chunks hold (stemmed, as ``rag.lexical.tokenize`` writes them)."""
        return self._loaded.bm25.vocabulary()

    def search_lexical(self, query: str, k: int, allowed_ids: np.ndarray | None = None) -> list[tuple[int, float]]:
        """(chunk id, BM25 score) of the ``k`` best chunks for ``query``, among ``allowed_ids`` when given."""
        bm25 = self._loaded.bm25
        mask = np.isin(bm25.chunk_ids, allowed_ids) if allowed_ids is not None else None
        return bm25.search(query, k, mask)


@dataclass
class CommitStats:
    generation: str
    documents: int
    chunks: int
    seconds: float


class CollectionWriter:
    """The one writer of a collection: changes go into a new generation, visible only at ``commit``."""

    def __init__(self, settings: Settings, name: str, *, model_id: str, dim: int, rebuild: bool = False) -> None:
        self.paths = CollectionPaths(settings.index_dir, name)
        self.settings = settings
        self.model_id = model_id
        self.dim = dim
        self.rebuild = rebuild
        self._lock_fd: int | None = None
        self._gen_dir: Path | None = None
        self._store: _Docstore | None = None
        self.committed = False

    # -- lifecycle -------------------------------------------------------------------------------
    def __enter__(self) -> CollectionWriter:
        self._lock_fd = acquire_lock(self.paths, self.settings.index.lock_timeout_s)
        try:
            self._open_generation()
        except BaseException:
            release_lock(self._lock_fd)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.committed and self._store is not None:
            self._store.conn.close()
            if self._gen_dir is not None:
                shutil.rmtree(self._gen_dir, ignore_errors=True)
        if self._lock_fd is not None:
            release_lock(self._lock_fd)
            self._lock_fd = None

    def _open_generation(self) -> None:
        current = self.paths.current()
        # Anything newer than CURRENT is debris from a writer that died before its commit.
        for gen in self.paths.generations():
            if current is None or gen > current:
                shutil.rmtree(self.paths.root / gen, ignore_errors=True)
        number = int(current[1:]) + 1 if current else 1
        self._gen_dir = self.paths.root / f"g{number:06d}"
        self._gen_dir.mkdir()
        target = self._gen_dir / "docstore.sqlite"
        dst = sqlite3.connect(target, check_same_thread=False)
        if current and not self.rebuild:
            src = sqlite3.connect(f"file:{self.paths.root / current / 'docstore.sqlite'}?mode=ro", uri=True)
            src.backup(dst)
            src.close()
        dst.executescript(SCHEMA)
        if not any(r[1] == "page_label" for r in dst.execute("PRAGMA table_info(chunks)")):
            dst.execute("ALTER TABLE chunks ADD COLUMN page_label TEXT")  # a docstore from before page labels
        self._store = _Docstore(dst)
        meta = self._store.meta()
        if meta.get("model") and meta["model"] != self.model_id:
            raise IndexMismatchError(
                f"collection '{self.paths.name}' was built with embedding model '{meta['model']}', not "
                f"'{self.model_id}'. Use DOCQA_EMBEDDER_MODEL='{meta['model']}', or `--rebuild` to re-embed "
                "everything with the new model."
            )
        with dst:
            dst.execute("INSERT OR REPLACE INTO meta VALUES ('model', ?)", (self.model_id,))
            dst.execute("INSERT OR REPLACE INTO meta VALUES ('dim', ?)", (str(self.dim),))

    @property
    def store(self) -> _Docstore:
        assert self._store is not None, "use CollectionWriter as a context manager"
        return self._store

    # -- reads the ingest planner needs ----------------------------------------------------------
    def document(self, path: str) -> sqlite3.Row | None:
        return self.store.document(path)

    def document_paths(self) -> list[str]:
        return [r[0] for r in self.store.conn.execute("SELECT path FROM documents ORDER BY path")]

    def has_content(self, content_hash: str) -> bool:
        row = self.store.conn.execute("SELECT 1 FROM chunks WHERE content_hash = ? LIMIT 1", (content_hash,))
        return row.fetchone() is not None

    def cached_embeddings(self, text_hashes: Iterable[str]) -> dict[str, np.ndarray]:
        """Vectors already stored for identical chunk texts: a changed file re-embeds only what changed."""
        hashes = list(set(text_hashes))
        out: dict[str, np.ndarray] = {}
        for i in range(0, len(hashes), 500):
            part = hashes[i : i + 500]
            for text_hash, blob in self.store.conn.execute(
                f"SELECT text_hash, embedding FROM chunks WHERE text_hash IN ({','.join('?' * len(part))})", part
            ):
                out[text_hash] = np.frombuffer(blob, dtype=np.float32, count=self.dim)
        return out

    # -- writes ----------------------------------------------------------------------------------
    def put_document(
        self,
        *,
        path: str,
        content_hash: str,
        doc_type: str,
        title: str | None,
        size: int,
        mtime: float,
        chunks: Sequence[ChunkDraft] | None,
        text_hashes: Sequence[str] = (),
        vectors: np.ndarray | None = None,
    ) -> None:
        """Add or replace one document; ``chunks`` is None when its content is already stored."""
        conn = self.store.conn
        with conn:
            old = conn.execute("SELECT content_hash FROM documents WHERE path = ?", (path,)).fetchone()
            conn.execute(
                "INSERT OR REPLACE INTO documents (path, content_hash, doc_type, title, size, mtime, ingested_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (path, content_hash, doc_type, title, size, mtime, time.time()),
            )
            if chunks is not None and not self._content_stored(conn, content_hash):
                assert vectors is not None and len(vectors) == len(chunks) == len(text_hashes)
                conn.executemany(
                    "INSERT INTO chunks (content_hash, ordinal, text, text_hash, page, page_end, heading, "
                    "element_type, n_tokens, embedding, page_label) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            content_hash,
                            i,
                            c.text,
                            th,
                            c.page,
                            c.page_end,
                            c.heading,
                            c.element_type,
                            c.n_tokens,
                            np.ascontiguousarray(v, dtype=np.float32).tobytes(),
                            c.page_label,
                        )
                        for i, (c, th, v) in enumerate(zip(chunks, text_hashes, vectors, strict=True))
                    ],
                )
            if old and old[0] != content_hash:
                self._drop_orphan(conn, old[0])

    @staticmethod
    def _content_stored(conn: sqlite3.Connection, content_hash: str) -> bool:
        return (
            conn.execute("SELECT 1 FROM chunks WHERE content_hash = ? LIMIT 1", (content_hash,)).fetchone() is not None
        )

    @staticmethod
    def _drop_orphan(conn: sqlite3.Connection, content_hash: str) -> None:
        still_used = conn.execute("SELECT 1 FROM documents WHERE content_hash = ? LIMIT 1", (content_hash,)).fetchone()
        if not still_used:
            conn.execute("DELETE FROM chunks WHERE content_hash = ?", (content_hash,))

    def remove_document(self, path: str) -> bool:
        conn = self.store.conn
        with conn:
            row = conn.execute("SELECT content_hash FROM documents WHERE path = ?", (path,)).fetchone()
            if row is None:
                return False
            conn.execute("DELETE FROM documents WHERE path = ?", (path,))
            self._drop_orphan(conn, row[0])
        return True

    def commit(self, retrieval: RetrievalSettings) -> CommitStats:
        """Build the indexes from the docstore, make everything durable, then swap CURRENT."""
        started = time.monotonic()
        assert self._gen_dir is not None
        conn = self.store.conn
        ids: list[int] = []
        texts: list[str] = []
        vectors = np.zeros((0, self.dim), dtype=np.float32)
        blobs: list[bytes] = []
        for cid, text, heading, blob in conn.execute("SELECT id, text, heading, embedding FROM chunks ORDER BY id"):
            ids.append(cid)
            texts.append(index_text(text, heading))
            blobs.append(blob)
        if blobs:
            vectors = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(-1, self.dim)
        id_array = np.array(ids, dtype=np.int64)
        FaissIndex.build(vectors, id_array, self.dim, self.settings.index).save(self._gen_dir / "vectors.faiss")
        BM25Index.build(texts, id_array, k1=retrieval.bm25_k1, b=retrieval.bm25_b).save(self._gen_dir / "bm25")
        documents = conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
        conn.close()
        meta = {
            "model": self.model_id,
            "dim": self.dim,
            "index_kind": self.settings.index.kind,
            "documents": int(documents),
            "chunks": len(ids),
            "committed_at": time.time(),
        }
        (self._gen_dir / "meta.json").write_text(json.dumps(meta, indent=2))
        _fsync_tree(self._gen_dir)
        _atomic_write(self.paths.current_file, self._gen_dir.name + "\n")
        self.committed = True
        self._prune_generations()
        return CommitStats(self._gen_dir.name, int(documents), len(ids), time.monotonic() - started)

    def _prune_generations(self) -> None:
        """Delete generations older than the newest ``keep_generations``, except (``keep_superseded_s``)
        those replaced so recently that a reader elsewhere may still be reading them."""
        keep = self.settings.index.keep_generations
        linger = self.settings.index.keep_superseded_s
        gens = self.paths.generations()
        now = time.time()
        for i, gen in enumerate(gens[:-keep]):
            if linger > 0 and now - self._committed_at(gens[i + 1], now) < linger:
                continue  # the next commit's prune looks again
            shutil.rmtree(self.paths.root / gen, ignore_errors=True)

    def _committed_at(self, gen: str, default: float) -> float:
        """When ``gen`` was committed (so when its predecessor was superseded), by its meta.json."""
        try:
            return float(json.loads((self.paths.root / gen / "meta.json").read_text())["committed_at"])
        except (OSError, ValueError, KeyError):
            return default


def list_collections(settings: Settings) -> list[CollectionInfo]:
    out = []
    if not settings.index_dir.exists():
        return out
    for root in sorted(settings.index_dir.iterdir()):
        try:
            paths = CollectionPaths(settings.index_dir, root.name)
        except DocqaError:
            continue  # not a collection directory
        for _ in range(LOAD_ATTEMPTS):
            current = paths.current()
            if current is None:
                break
            try:
                meta = json.loads((root / current / "meta.json").read_text())
            except FileNotFoundError:
                if paths.current() != current:
                    continue  # pruned after newer commits (a writer elsewhere): read the latest
                raise
            out.append(_info(root.name, current, meta))
            break
    return out


def _info(name: str, generation: str, meta: dict) -> CollectionInfo:
    return CollectionInfo(
        name=name,
        documents=int(meta["documents"]),
        chunks=int(meta["chunks"]),
        model=str(meta["model"]),
        dim=int(meta["dim"]),
        generation=generation,
        committed_at=float(meta["committed_at"]),
    )


def drop_collection(settings: Settings, name: str) -> None:
    """Delete a whole collection, under its lock so that no writer is mid-commit."""
    paths = CollectionPaths(settings.index_dir, name)
    if paths.current() is None:
        raise CollectionNotFoundError(name, [c.name for c in list_collections(settings)])
    fd = acquire_lock(paths, settings.index.lock_timeout_s)
    try:
        paths.current_file.unlink()
        for gen in paths.generations():
            shutil.rmtree(paths.root / gen, ignore_errors=True)
    finally:
        release_lock(fd)
    shutil.rmtree(paths.root, ignore_errors=True)
