"""Hybrid retrieval: dense FAISS and BM25 candidates, fused (convex or weighted reciprocal rank),
de-duplicated, optionally reranked by a cross-encoder."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from rag.embedder import Embedder
from rag.fusion import fuse
from rag.rerank import Reranker
from rag.settings import RetrievalSettings
from rag.store import CollectionReader
from rag.types import Filters, Hit


@dataclass
class Retrieval:
    hits: list[Hit]
    best_dense: float  # best cosine similarity of any chunk to the query: one of the answerability signals
    ms: float
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class Candidates:
    """The candidate stage's output: the fused ranking and the scores each retriever gave."""

    fused: list[tuple[int, float]]  # (chunk id, fused score), best first
    dense: list[tuple[int, float]]  # (chunk id, cosine), best first; computed in every mode (best_dense)
    lexical: list[tuple[int, float]]  # (chunk id, BM25 score); empty in dense mode
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def best_dense(self) -> float:
        return float(self.dense[0][1]) if self.dense else 0.0


class Retriever:
    """Stateless over collections: the reader to search is passed in (fresh: the caller's reader lookup
    refreshes it), so one retriever serves all."""

    def __init__(self, settings: RetrievalSettings, embedder: Embedder, reranker: Reranker | None = None) -> None:
        self.settings = settings
        self.embedder = embedder
        self.reranker = reranker

    def warm_up(self) -> None:
        """Load the embedder now (safe to call twice), so that no search is charged for it."""
        warm_up = getattr(self.embedder, "warm_up", None)
        if warm_up is not None:
            warm_up()

    def candidates(
        self,
        reader: CollectionReader,
        query: str,
        *,
        depth: int,
        filters: Filters | None = None,
        mode: str | None = None,
    ) -> Candidates:
        """Dense and BM25 candidates ``depth`` deep from each retriever that ``mode`` runs, fused; before
        de-duplication and reranking (which only thin or reorder them)."""
        s = self.settings
        mode = mode or s.mode
        timings: dict[str, float] = {}
        allowed_ids = reader.chunk_ids(filters) if filters and filters.active else None
        t = time.perf_counter()
        qvec = self.embedder.embed_query(query)
        timings["embed_ms"] = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        dense = reader.search_dense(qvec, depth, allowed_ids)
        timings["dense_ms"] = (time.perf_counter() - t) * 1000
        lexical: list[tuple[int, float]] = []
        if mode != "dense":
            t = time.perf_counter()
            lexical = reader.search_lexical(query, depth, allowed_ids)
            timings["bm25_ms"] = (time.perf_counter() - t) * 1000
        fused = fuse([] if mode == "bm25" else dense, lexical, s)
        return Candidates(fused, dense, lexical, timings)

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
        top_k = top_k or s.top_k
        rerank = s.rerank if rerank is None else rerank
        found = self.candidates(reader, query, depth=max(s.candidate_depth, top_k), filters=filters, mode=mode)
        timings = found.timings

        dense_scores = dict(found.dense)
        bm25_scores = dict(found.lexical)
        pool = found.fused[: max(top_k * s.pool_factor, s.rerank_depth if rerank else 0)]
        pool = self._collapse_duplicates(reader, pool)
        chunks = reader.chunks([cid for cid, _ in pool])
        hits = [
            Hit(chunks[cid], score, dense_scores.get(cid), bm25_scores.get(cid)) for cid, score in pool if cid in chunks
        ]
        if rerank and self.reranker is not None:
            t = time.perf_counter()
            hits = self.reranker.rerank(query, hits[: s.rerank_depth])
            timings["rerank_ms"] = (time.perf_counter() - t) * 1000
        hits = hits[:top_k]
        return Retrieval(hits, found.best_dense, (time.perf_counter() - t0) * 1000, timings)

    def _collapse_duplicates(self, reader: CollectionReader, pool: list[tuple[int, float]]) -> list[tuple[int, float]]:
        """Drop candidates whose vector is nearly identical to a better-ranked one (copies, boilerplate)."""
        if len(pool) < 2 or self.settings.dedup_threshold >= 1.0:
            return pool
        vectors = reader.embeddings([cid for cid, _ in pool])
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
