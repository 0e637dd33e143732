"""The composition root: ``build(settings)`` wires every component once. The CLI, the HTTP API and the
Streamlit app all call it; nothing else constructs backends. Building is cheap: models load on first use.

This is the one module that knows every package: it hands the library (``rag``) and the features
(``ingest``) their collaborators, so none of them reaches for another.
"""

from __future__ import annotations

import threading
from functools import cached_property
from typing import TYPE_CHECKING

from ingest.uploads import UploadStore
from rag.answer_check import AnswerChecker, CrossEncoderCheck
from rag.embedder import Embedder, build_embedder, resolve_embedder_path
from rag.errors import CollectionNotFoundError
from rag.evidence import EvidenceSelector
from rag.generation import Generator, build_generator
from rag.pipeline import AnswerPipeline
from rag.rerank import CrossEncoderReranker
from rag.retrieval import Retriever
from rag.settings import Settings
from rag.store import CollectionInfo, CollectionReader, drop_collection, list_collections
from rag.token_count import ChatTokenCounter

if TYPE_CHECKING:
    from ingest.pipeline import Ingestor


class Services:
    """Every component, built on first use from one Settings. ``embedder`` and ``generator`` may be given
    ready-made: a process that already holds a loaded model (a test session, a benchmark) shares it."""

    def __init__(
        self, settings: Settings, *, embedder: Embedder | None = None, generator: Generator | None = None
    ) -> None:
        self.settings = settings
        self._readers: dict[str, CollectionReader] = {}
        self._lock = threading.Lock()
        if embedder is not None:
            self.__dict__["embedder"] = embedder  # fills the cached_property's slot
        if generator is not None:
            self.__dict__["generator"] = generator

    @cached_property
    def embedder(self) -> Embedder:
        return build_embedder(self.settings.embedder)

    @cached_property
    def reranker(self) -> CrossEncoderReranker | None:
        model = self.settings.retrieval.reranker_model
        return CrossEncoderReranker(model) if model else None

    @cached_property
    def retriever(self) -> Retriever:
        return Retriever(self.settings.retrieval, self.embedder, self.reranker)

    @cached_property
    def ingestor(self) -> Ingestor:
        # Imported here: the parsers (docx, pptx, lxml, pdfium) add most of a second to every process
        # that starts (each CLI command, the UI), and most never ingest.
        from ingest.pipeline import Ingestor

        return Ingestor(self.settings, self.embedder)

    @cached_property
    def uploads(self) -> UploadStore:
        """Where files uploaded through the API or the UI are kept (one naming rule for both)."""
        return UploadStore(self.settings)

    @cached_property
    def generator(self) -> Generator:
        return build_generator(self.settings)

    @cached_property
    def count_tokens(self) -> ChatTokenCounter:
        """The chat model's token counter; its tokenizer loads on the first count."""
        return ChatTokenCounter(self.settings, self.generator)

    @cached_property
    def evidence(self) -> EvidenceSelector:
        return EvidenceSelector(self.settings.evidence, self.embedder)

    @cached_property
    def checker(self) -> AnswerChecker | None:
        """The learned answer check (rag/answer_check.py); None when ``check.enabled`` is off. Its weights load
        on the first question that needs them."""
        s = self.settings
        if not s.check.enabled:
            return None
        return CrossEncoderCheck(s.check.model, resolve_embedder_path(s.embedder.model), s.check.batch_size)

    @cached_property
    def pipeline(self) -> AnswerPipeline:
        return AnswerPipeline(
            self.settings,
            retriever=self.retriever,
            generator=self.generator,
            readers=self.reader,
            count_tokens=self.count_tokens,
            evidence=self.evidence,
            checker=self.checker,
            gate=threading.BoundedSemaphore(self.settings.answer.compute_slots)
            if self.settings.answer.compute_slots
            else None,
        )

    def reader(self, collection: str) -> CollectionReader:
        """The collection's reader at its latest commit (an ingest's, say): a snapshot of the cached reader,
        so a question that is being answered keeps its generation while another one refreshes."""
        with self._lock:
            reader = self._readers.get(collection)
            if reader is None:
                reader = CollectionReader(self.settings, collection, expected_model=self.embedder.model_id)
                self._readers[collection] = reader
        try:
            reader.refresh()
        except CollectionNotFoundError:
            with self._lock:
                self._readers.pop(collection, None)
            raise
        return reader.snapshot()

    def collections(self) -> list[CollectionInfo]:
        return list_collections(self.settings)

    def drop_collection(self, collection: str) -> None:
        drop_collection(self.settings, collection)
        with self._lock:
            self._readers.pop(collection, None)


def build(settings: Settings, *, embedder: Embedder | None = None, generator: Generator | None = None) -> Services:
    return Services(settings, embedder=embedder, generator=generator)
