"""What both evaluations share: a fresh collection built by the real ingest pipeline, and an embedder
that serves query vectors computed beforehand in batches (same model, same vectors, far less time)."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rag.embedder import Embedder
from rag.errors import DocqaError
from rag.generation import Generator
from rag.pipeline import AnswerPipeline
from rag.rerank import Reranker
from rag.settings import Settings
from rag.store import CollectionInfo, CollectionReader


class Ingests(Protocol):
    def ingest(self, paths: list[Path], collection: str, *, rebuild: bool = False) -> Any:
        """An ingest report: ``.added``, ``.chunks``, ``.failed``."""
        ...


class EvalServices(Protocol):
    """What the evaluations use of the application's services (``docqa.services.Services`` is one): the
    library cannot import the composition root above it, so it names what it needs."""

    settings: Settings
    embedder: Embedder
    reranker: Reranker | None
    ingestor: Ingests
    generator: Generator
    pipeline: AnswerPipeline

    def reader(self, collection: str) -> CollectionReader: ...

    def collections(self) -> list[CollectionInfo]: ...

    def drop_collection(self, collection: str) -> None: ...


class EvalIngestError(DocqaError):
    """The evaluation collection could not be built."""


@dataclass
class BuiltCollection:
    name: str
    reader: CollectionReader
    documents: int
    chunks: int
    ingest_s: float
    failed: list[dict[str, str]]


@contextmanager
def work_directory(keep: Path | None = None) -> Iterator[Path]:
    """A scratch directory for the generated documents; removed afterwards unless ``keep`` names one."""
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    path = Path(tempfile.mkdtemp(prefix="docqa-eval-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def fresh_collection(
    services: EvalServices, docs_dir: Path, label: str, keep: str | None = None
) -> Iterator[BuiltCollection]:
    """Ingest ``docs_dir`` into a new, uniquely named collection and drop it on exit. ``keep`` names a
    collection kept afterwards instead, and reused as it is when it exists (answer-policy experiments
    replayed many times on one ingest)."""
    if keep and keep in {c.name for c in services.collections()}:
        reader = services.reader(keep)
        yield BuiltCollection(keep, reader, 0, 0, 0.0, [])
        return
    name = keep or f"eval-{label}-{os.getpid()}-{int(time.time())}"
    t0 = time.perf_counter()
    report = services.ingestor.ingest([docs_dir], name, rebuild=True)
    seconds = time.perf_counter() - t0
    try:
        if not report.chunks:
            raise EvalIngestError(
                f"ingesting {docs_dir} produced no chunks ({len(report.failed)} files failed, first: "
                f"{report.failed[:1]}); check the data set path and the ingest parsers"
            )
        reader = services.reader(name)
        yield BuiltCollection(name, reader, len(report.added), report.chunks, seconds, report.failed)
    finally:
        if not keep and name in {c.name for c in services.collections()}:
            services.drop_collection(name)


class PrecomputedQueryEmbedder:
    """The Embedder protocol over a base embedder, answering ``embed_query`` from a batch-computed table."""

    def __init__(self, base: Embedder, queries: list[str]) -> None:
        self.base = base
        self.model_id = base.model_id
        unique = list(dict.fromkeys(queries))
        vectors = base.embed(unique)
        self._table = {q: vectors[i] for i, q in enumerate(unique)}

    @property
    def dim(self) -> int:
        return self.base.dim

    @property
    def max_tokens(self) -> int:
        return self.base.max_tokens

    def count_tokens(self, text: str) -> int:
        return self.base.count_tokens(text)

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.base.embed(texts)

    def embed_query(self, text: str) -> np.ndarray:
        vector = self._table.get(text)
        return vector if vector is not None else self.base.embed_query(text)
