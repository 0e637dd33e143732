"""``docqa eval retrieval``: BM25 alone, dense alone, hybrid and (when configured) hybrid + reranker,
side by side on one fresh collection, scored per document (several chunks of one document count once)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from rag.evaluation.datasets import EvalSet, doc_id_from_path
from rag.evaluation.metrics import RANKING_METRICS, mean_scores, ranking_scores
from rag.evaluation.runner import BuiltCollection, EvalServices, PrecomputedQueryEmbedder
from rag.retrieval import Retriever
from rag.types import Hit

TOP_K = 10  # the ranking nDCG@10, MRR@10 and hit@k are read from (search depth as in normal use)
RECALL_K = 100  # recall@100 is read from the fused candidate list this deep


@dataclass(frozen=True)
class Variant:
    name: str
    mode: str  # the Retriever's mode
    rerank: bool = False


def variants(services: EvalServices) -> list[Variant]:
    out = [Variant("bm25", "bm25"), Variant("dense", "dense"), Variant("hybrid", "hybrid")]
    if services.settings.retrieval.reranker_model:
        out.append(Variant("hybrid+rerank", "hybrid", rerank=True))
    return out


def ranked_doc_ids(hits: list[Hit]) -> list[str]:
    """Gold-comparable document ids in rank order (a chunk stored under several paths yields each)."""
    out: list[str] = []
    for hit in hits:
        for source in hit.chunk.sources:
            doc_id = doc_id_from_path(source)
            if doc_id is not None:
                out.append(doc_id)
    return out


def candidate_ids(retriever: Retriever, built: BuiltCollection, query: str, mode: str) -> list[str]:
    """The retriever's fused candidate list RECALL_K deep, before de-duplication and reranking (which only
    reorder or thin it): what recall@100 measures. Read from its candidate stage, as a top-100 search would
    also de-duplicate 300 candidates per query, which costs minutes over SQuAD's 5,000 questions."""
    depth = max(retriever.settings.candidate_depth, RECALL_K)
    fused = retriever.candidates(built.reader, query, depth=depth, mode=mode).fused[:RECALL_K]
    chunks = built.reader.chunks([cid for cid, _ in fused])
    return [
        doc_id
        for cid, _ in fused
        if cid in chunks
        for doc_id in (doc_id_from_path(s) for s in chunks[cid].sources)
        if doc_id is not None
    ]


def evaluate_retrieval(
    services: EvalServices,
    evalset: EvalSet,
    built: BuiltCollection,
    *,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Score every variant on the in-index queries; returns the JSON-ready result."""
    queries = evalset.in_index
    embedder = PrecomputedQueryEmbedder(services.embedder, [q.text for q in queries])
    retriever = Retriever(services.settings.retrieval, embedder, services.reranker)
    rows = []
    for variant in variants(services):
        t0 = time.perf_counter()
        per_query, latencies = [], []
        for q in queries:
            top = retriever.search(built.reader, q.text, top_k=TOP_K, mode=variant.mode, rerank=variant.rerank)
            latencies.append(top.ms)
            scores = ranking_scores(ranked_doc_ids(top.hits), q.relevance)
            deep = candidate_ids(retriever, built, q.text, variant.mode)
            scores["recall@100"] = ranking_scores(deep, q.relevance)["recall@100"]
            per_query.append(scores)
        metrics = mean_scores(per_query)
        rows.append(
            {
                "variant": variant.name,
                **{m: round(metrics[m], 4) for m in RANKING_METRICS},
                "search_ms_p50": round(statistics.median(latencies), 2),
            }
        )
        if progress:
            progress(f"{variant.name}: nDCG@10 {metrics['ndcg@10']:.3f} ({time.perf_counter() - t0:.0f} s)")
    r = services.settings.retrieval
    return {
        "kind": "retrieval",
        "dataset": evalset.name,
        "documents": built.documents,
        "chunks": built.chunks,
        "queries": len(queries),
        "ingest_s": round(built.ingest_s, 1),
        "ingest_failed": len(built.failed),
        "settings": {
            "fusion": r.fusion,
            "dense_weight": r.dense_weight,
            "bm25_weight": r.bm25_weight,
            "candidate_depth": r.candidate_depth,
            "rrf_k": r.rrf_k,
            "bm25_k1": r.bm25_k1,
            "bm25_b": r.bm25_b,
            "reranker_model": r.reranker_model,
            "embedder": services.settings.embedder.model,
            "chunk_tokens": services.settings.ingest.chunk_tokens,
        },
        "note": "search_ms excludes query embedding (queries are embedded beforehand in batches); recall@100 "
        "is read from the fused candidate list before de-duplication",
        "rows": rows,
    }
