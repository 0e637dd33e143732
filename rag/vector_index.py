"""FAISS vector indexes: flat (exact), HNSW and IVF, all keyed by chunk id, inner product on unit vectors."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Protocol

import numpy as np

from rag.settings import IndexSettings


class VectorIndex(Protocol):
    """What the retriever needs from a vector index."""

    @property
    def ntotal(self) -> int: ...

    def search(self, query: np.ndarray, k: int, allowed_ids: np.ndarray | None = None) -> list[tuple[int, float]]: ...


IVF_TRAIN_POINTS_PER_CELL = 64


class FaissIndex:
    """A FAISS index wrapped in an id map so that results are chunk ids, not row numbers."""

    def __init__(self, index, settings: IndexSettings) -> None:
        self._index = index
        self.settings = settings
        self._apply_search_params()

    @classmethod
    def build(cls, vectors: np.ndarray, ids: np.ndarray, dim: int, settings: IndexSettings) -> FaissIndex:
        import faiss

        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, dim)
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        n = len(ids)
        kind = settings.kind
        if kind == "ivf" and n < 1000:
            kind = "flat"  # IVF needs enough points to train its cells; tiny collections are exact anyway
        if kind == "hnsw":
            base = faiss.IndexHNSWFlat(dim, settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            base.hnsw.efConstruction = settings.hnsw_ef_construction
        elif kind == "ivf":
            nlist = settings.ivf_nlist or max(8, int(4 * math.sqrt(n)))
            nlist = min(nlist, n // 39 or 1)  # FAISS wants ~39 training points per cell
            quantizer = faiss.IndexFlatIP(dim)
            base = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
            # k-means on a sample of 64 points a cell (FAISS asks for 39 to 256): a quarter of the cost of
            # its default at a million chunks; `make bench-retrieval` reports the recall against flat.
            sample = IVF_TRAIN_POINTS_PER_CELL * nlist
            if n > sample:
                vectors_for_training = vectors[np.random.default_rng(0).choice(n, sample, replace=False)]
            else:
                vectors_for_training = vectors
            base.train(vectors_for_training)
        else:
            base = faiss.IndexFlatIP(dim)
        index = faiss.IndexIDMap2(base)
        if n:
            index.add_with_ids(vectors, ids)
        return cls(index, settings)

    def _apply_search_params(self) -> None:
        import faiss

        base = faiss.downcast_index(self._index.index)
        if isinstance(base, faiss.IndexHNSW):
            base.hnsw.efSearch = self.settings.hnsw_ef_search
        elif isinstance(base, faiss.IndexIVF):
            base.nprobe = self.settings.ivf_nprobe

    @property
    def ntotal(self) -> int:
        return int(self._index.ntotal)

    @property
    def dim(self) -> int:
        return int(self._index.d)

    def save(self, path: Path) -> None:
        import faiss

        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path, settings: IndexSettings) -> FaissIndex:
        import faiss

        return cls(faiss.read_index(str(path)), settings)

    def search(self, query: np.ndarray, k: int, allowed_ids: np.ndarray | None = None) -> list[tuple[int, float]]:
        import faiss

        if self.ntotal == 0 or k <= 0:
            return []
        q = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
        k = min(k, self.ntotal)
        params = None
        if allowed_ids is not None:
            if len(allowed_ids) == 0:
                return []
            selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed_ids, dtype=np.int64))
            base = faiss.downcast_index(self._index.index)
            if isinstance(base, faiss.IndexIVF):
                # IVF insists on its own parameter type, which must also carry nprobe.
                params = faiss.SearchParametersIVF(sel=selector, nprobe=self.settings.ivf_nprobe)
            elif isinstance(base, faiss.IndexHNSW):
                params = faiss.SearchParametersHNSW(sel=selector, efSearch=self.settings.hnsw_ef_search)
            else:
                params = faiss.SearchParameters(sel=selector)
        scores, ids = self._index.search(q, k, params=params)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i != -1]
