"""Optional cross-encoder reranking stage. No cross-encoder ships with docqa (none is packaged on PyPI
with its weights), so the stage is off by default and works with any configured model."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Protocol

from rag.errors import ConfigError
from rag.types import Hit


class Reranker(Protocol):
    def rerank(self, query: str, hits: list[Hit]) -> list[Hit]: ...


class CrossEncoderReranker:
    """sentence-transformers CrossEncoder; loads in ``warm_up``."""

    def __init__(self, model: str, device: str = "cpu") -> None:
        self.model_id = model
        self.device = device
        self._model = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            from sentence_transformers import CrossEncoder

            try:
                self._model = CrossEncoder(self.model_id, device=self.device)
            except OSError as exc:
                raise ConfigError(
                    f"reranker model '{self.model_id}' could not be loaded ({exc}); set "
                    "DOCQA_RETRIEVAL_RERANKER_MODEL to a local CrossEncoder path, or turn reranking off."
                ) from exc

    def rerank(self, query: str, hits: list[Hit]) -> list[Hit]:
        if not hits:
            return hits
        self.warm_up()
        assert self._model is not None
        scores = self._model.predict([(query, h.chunk.text) for h in hits], show_progress_bar=False)
        ranked = [replace(h, score=float(s), rerank_score=float(s)) for h, s in zip(hits, scores, strict=True)]
        return sorted(ranked, key=lambda h: -h.score)
