"""The FAISS index kinds and the BM25 index, on their own."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.lexical import BM25Index, tokenize
from rag.settings import IndexSettings
from rag.vector_index import FaissIndex


def unit_vectors(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_each_kind_finds_the_query_itself_and_honours_filters(kind: str, tmp_path: Path) -> None:
    vectors = unit_vectors(3000)
    ids = np.arange(100, 3100, dtype=np.int64)
    settings = IndexSettings(kind=kind, ivf_nprobe=64)
    index = FaissIndex.build(vectors, ids, 32, settings)
    index.save(tmp_path / "v.faiss")
    index = FaissIndex.load(tmp_path / "v.faiss", settings)
    assert index.ntotal == 3000
    top = index.search(vectors[42], 5)
    assert top[0][0] == 142 and top[0][1] == pytest.approx(1.0, abs=1e-4)
    allowed = np.array([150, 2999, 3050], dtype=np.int64)
    assert {cid for cid, _ in index.search(vectors[42], 5, allowed)} <= set(allowed.tolist())
    assert index.search(vectors[42], 5, np.array([], dtype=np.int64)) == []


def test_ivf_on_a_tiny_collection_is_exact() -> None:
    vectors = unit_vectors(50)
    index = FaissIndex.build(vectors, np.arange(50), 32, IndexSettings(kind="ivf"))
    assert [cid for cid, _ in index.search(vectors[7], 1)] == [7]


def test_empty_index_searches_to_nothing() -> None:
    index = FaissIndex.build(np.zeros((0, 32), np.float32), np.zeros(0, np.int64), 32, IndexSettings())
    assert index.search(unit_vectors(1)[0], 5) == []


def test_bm25_stems_ranks_filters_and_round_trips(tmp_path: Path) -> None:
    texts = [
        "The battery is replaced every two years.",
        "Replacing the filter keeps suction strong.",
        "Our office is closed on public holidays.",
    ]
    index = BM25Index.build(texts, np.array([10, 20, 30]), k1=1.2, b=0.75)
    index.save(tmp_path / "bm25")
    index = BM25Index.load(tmp_path / "bm25")
    assert tokenize("Replacing batteries")[0] == tokenize("replaced")[0]
    assert next(cid for cid, _ in index.search("replacing the batteries", 3)) == 10
    assert index.search("unknownword zzz", 3) == []
    mask = np.array([False, True, True])
    assert [cid for cid, _ in index.search("replacing the batteries", 3, mask)] == [20]
