"""Hybrid retrieval: dense FAISS and BM25 candidates, fused by weighted reciprocal rank, de-duplicated,
optionally reranked by a cross-encoder."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from rag.embedder import Embedder
from rag.fusion import fuse
from rag.rerank import Reranker
from rag.settings import RetrievalSettings
from rag.store import CollectionReader, Filters
from rag.types import Hit


@dataclass
class Retrieval:
    hits: list[Hit]
    best_dense: float  # best cosine similarity of any chunk to the query: one of the answerability signals
    ms: float
    timings: dict[str, float] = field(default_factory=dict)


class Retriever:
    """Stateless over collections: the reader to search is passed in, so one retriever serves all."""

    def __init__(self, settings: RetrievalSettings, embedder: Embedder, reranker: Reranker | None = None) -> None:
        self.settings = settings
        self.embedder = embedder
        self.reranker = reranker

    def search(
        self,
        reader: CollectionReader,
        query: str,
        *,
        top_k: int | None = None,
        filters: Filters | None = None,
        mode: str | None = None,
        rerank: bool | None = None,
    ) -> Retrieval:
        s = self.settings
        t0 = time.perf_counter()
        reader.refresh()
        top_k = top_k or s.top_k
        mode = mode or s.mode
        rerank = s.rerank if rerank is None else rerank
        depth = max(s.candidate_depth, top_k)
        timings: dict[str, float] = {}

        allowed_ids = reader.docstore.allowed_ids(filters) if filters and filters.active else None
        t = time.perf_counter()
        qvec = self.embedder.embed_query(query)
        timings["embed_ms"] = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        dense = reader.vectors.search(qvec, depth, allowed_ids)
        timings["dense_ms"] = (time.perf_counter() - t) * 1000
        best_dense = dense[0][1] if dense else 0.0
        lexical: list[tuple[int, float]] = []
        if mode != "dense":
            t = time.perf_counter()
            mask = np.isin(reader.bm25.chunk_ids, allowed_ids) if allowed_ids is not None else None
            lexical = reader.bm25.search(query, depth, mask)
            timings["bm25_ms"] = (time.perf_counter() - t) * 1000
        dense_for_fusion = [] if mode == "bm25" else dense
        fused = fuse(dense_for_fusion, lexical, s)

        dense_scores = dict(dense)
        bm25_scores = dict(lexical)
        pool = fused[: max(top_k * 3, s.rerank_depth if rerank else 0)]
        pool = self._collapse_duplicates(reader, pool)
        chunks = reader.docstore.chunks([cid for cid, _ in pool])
        hits = [
            Hit(chunks[cid], score, dense_scores.get(cid), bm25_scores.get(cid)) for cid, score in pool if cid in chunks
        ]
        if rerank and self.reranker is not None:
            t = time.perf_counter()
            hits = self.reranker.rerank(query, hits[: s.rerank_depth])
            timings["rerank_ms"] = (time.perf_counter() - t) * 1000
        hits = hits[:top_k]
        return Retrieval(hits, float(best_dense), (time.perf_counter() - t0) * 1000, timings)

    def _collapse_duplicates(self, reader: CollectionReader, pool: list[tuple[int, float]]) -> list[tuple[int, float]]:
        """Drop candidates whose vector is nearly identical to a better-ranked one (copies, boilerplate)."""
        if len(pool) < 2 or self.settings.dedup_threshold >= 1.0:
            return pool
        vectors = reader.docstore.embeddings([cid for cid, _ in pool], reader.dim)
        kept: list[tuple[int, float]] = []
        kept_vecs: list[np.ndarray] = []
        for cid, score in pool:
            vec = vectors.get(cid)
            if vec is None:
                continue
            if kept_vecs and float(np.max(np.stack(kept_vecs) @ vec)) >= self.settings.dedup_threshold:
                continue
            kept.append((cid, score))
            kept_vecs.append(vec)
        return kept
