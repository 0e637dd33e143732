"""Retrieval at scale: flat, HNSW and IVF FAISS indexes and BM25 at 10k, 100k and 1M chunks.

Reports build time, memory, p50/p99 single-query latency (the way the retriever queries), and the
recall@10 of HNSW and IVF against exact flat search. Vectors are synthetic (clustered unit vectors),
BM25 texts are real sentences recombined. A build projected to take more than BENCH_MAX_BUILD_S
(default 600 s) is skipped with a note rather than left to run for an hour.

    python -m bench.retrieval                 # 10k, 100k, 1M
    BENCH_SIZES=10000,100000 python -m bench.retrieval
"""

from __future__ import annotations

import gc
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import Timer, median, percentile, write_results
from bench.corpus import clustered_vectors, queries_near, synthetic_texts
from rag.lexical import BM25Index
from rag.settings import IndexSettings, RetrievalSettings
from rag.vector_index import FaissIndex

DIM = 384
QUERIES = 200
BM25_QUERIES = 100
K = 10


def latencies(search, queries) -> tuple[list[float], list]:
    out, results = [], []
    for q in queries:
        t0 = time.perf_counter()
        results.append(search(q))
        out.append((time.perf_counter() - t0) * 1000)
    return out, results


def recall_against(exact: list, approx: list) -> float:
    hits = [len({i for i, _ in a[:K]} & {i for i, _ in e[:K]}) / K for a, e in zip(approx, exact, strict=True)]
    return float(np.mean(hits))


def bench_vectors(n: int, max_build_s: float, build_rate: dict[str, float], notes: list[str]) -> list[dict]:
    import faiss

    vectors = clustered_vectors(n, DIM)
    ids = np.arange(n, dtype=np.int64)
    queries = queries_near(vectors, QUERIES)
    rows = []
    exact: list = []
    for kind in ("flat", "hnsw", "ivf"):
        projected = build_rate.get(kind, 0.0) * n * (1.3 if kind == "hnsw" else 1.0)
        if projected > max_build_s:
            notes.append(f"{kind} at {n:,} skipped: build projected at {projected:.0f} s (> {max_build_s:.0f} s)")
            print(notes[-1], flush=True)
            continue
        settings = IndexSettings(kind=kind)
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        with Timer() as t:
            index = FaissIndex.build(vectors, ids, DIM, settings)
        memory = faiss.serialize_index(index._index).nbytes / 1024**2
        build_rate[kind] = t.s / n
        faiss.omp_set_num_threads(1)  # one query at a time: threads only add hand-off cost
        lat, results = latencies(lambda q, index=index: index.search(q, K), queries)
        if kind == "flat":
            exact = results
        rows.append(
            {
                "chunks": n,
                "index": kind,
                "build_s": round(t.s, 2),
                "index_mb": round(memory, 1),
                "p50_ms": round(median(lat), 3),
                "p99_ms": round(percentile(lat, 99), 3),
                "recall@10": round(recall_against(exact, results), 4) if exact else None,
            }
        )
        print(rows[-1], flush=True)
        del index
    return rows


def bench_bm25(n: int, retrieval: RetrievalSettings) -> dict:
    texts = synthetic_texts(n)
    queries = [" ".join(t.split()[3:9]) for t in synthetic_texts(BM25_QUERIES, seed=7)]
    with Timer() as t:
        index = BM25Index.build(texts, np.arange(n), k1=retrieval.bm25_k1, b=retrieval.bm25_b)
    with tempfile.TemporaryDirectory() as tmp:
        index.save(Path(tmp))
        memory = sum(f.stat().st_size for f in Path(tmp).iterdir()) / 1024**2
    del texts
    lat, _ = latencies(lambda q: index.search(q, retrieval.candidate_depth), queries)
    row = {
        "chunks": n,
        "index": "bm25",
        "build_s": round(t.s, 2),
        "index_mb": round(memory, 1),
        "p50_ms": round(median(lat), 3),
        "p99_ms": round(percentile(lat, 99), 3),
        "recall@10": None,
    }
    print(row, flush=True)
    return row


def main() -> None:
    sizes = [int(s) for s in os.environ.get("BENCH_SIZES", "10000,100000,1000000").split(",")]
    max_build_s = float(os.environ.get("BENCH_MAX_BUILD_S", "600"))
    notes = [
        "vectors: clustered synthetic unit vectors (2,000 centres, dim 384); queries near stored points",
        f"HNSW M={IndexSettings().hnsw_m} efConstruction={IndexSettings().hnsw_ef_construction} "
        f"efSearch={IndexSettings().hnsw_ef_search}; IVF nlist=4*sqrt(n), nprobe={IndexSettings().ivf_nprobe}",
        "latency: one query at a time (FAISS on 1 thread; builds use all cores); BM25 returns candidate_depth hits",
        "memory_mb: serialised index size (FAISS: vectors + graph/lists; BM25: its saved sparse matrix)",
    ]
    rows: list[dict] = []
    build_rate: dict[str, float] = {}
    for n in sizes:
        rows += bench_vectors(n, max_build_s, build_rate, notes)
        projected = build_rate.get("bm25", 0.0) * n
        if projected > max_build_s:
            notes.append(f"bm25 at {n:,} skipped: build projected at {projected:.0f} s (> {max_build_s:.0f} s)")
            print(notes[-1], flush=True)
        else:
            rows.append(bench_bm25(n, RetrievalSettings()))
            build_rate["bm25"] = rows[-1]["build_s"] / n
        gc.collect()
        # Written after every size, so a run stopped at 1M still leaves the smaller sizes on record.
        write_results("retrieval", rows, command="make bench-retrieval", notes=notes)


if __name__ == "__main__":
    main()
