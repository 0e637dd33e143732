"""BM25 over chunk texts (bm25s), persisted beside the FAISS index and rebuilt with it."""

from __future__ import annotations

import json
import re
import threading
from collections import defaultdict
from collections.abc import Collection, Iterator
from functools import lru_cache
from pathlib import Path

import numpy as np

_TOKEN = re.compile(r"(?u)\b\w\w+\b")


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens, English stop words out, Snowball-stemmed: the same for docs and queries."""
    stop = _stopwords()
    words = [w for w in _TOKEN.findall(text.lower()) if w not in stop]
    return _stemmer().stemWords(words)


class Vocabulary:
    """A collection's terms, with its terms grouped by first letter and length (built on the first near-spelling
    lookup), so a lookup reads a few hundred terms, not a million."""

    def __init__(self, terms: Collection[str]) -> None:
        self.terms = terms
        self._groups: dict[tuple[str, int], list[str]] | None = None
        self._lock = threading.Lock()

    def __contains__(self, term: object) -> bool:
        return term in self.terms

    def __iter__(self) -> Iterator[str]:
        return iter(self.terms)

    def __len__(self) -> int:
        return len(self.terms)

    def alike(self, term: str, budget: int) -> list[str]:
        """The terms starting with ``term``'s letter whose length is within ``budget`` of its length."""
        with self._lock:
            if self._groups is None:
                groups: dict[tuple[str, int], list[str]] = defaultdict(list)
                for t in self.terms:
                    groups[(t[:1], len(t))].append(t)
                self._groups = dict(groups)
        lengths = range(len(term) - budget, len(term) + budget + 1)
        return [t for n in lengths for t in self._groups.get((term[:1], n), ())]


class BM25Index:
    """A bm25s index whose rows line up with ``chunk_ids``."""

    def __init__(self, retriever, chunk_ids: np.ndarray, k1: float, b: float) -> None:
        self._retriever = retriever
        self.chunk_ids = chunk_ids
        self.k1 = k1
        self.b = b
        self._vocabulary: Vocabulary | None = None

    @classmethod
    def build(cls, texts: list[str], chunk_ids: np.ndarray, *, k1: float, b: float) -> BM25Index:
        import bm25s

        retriever = bm25s.BM25(k1=k1, b=b)
        if texts:
            retriever.index([tokenize(t) for t in texts], show_progress=False)
        return cls(retriever, np.asarray(chunk_ids, dtype=np.int64), k1, b)

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        if len(self.chunk_ids):
            self._retriever.save(str(directory))
        np.save(directory / "chunk_ids.npy", self.chunk_ids)
        (directory / "params.json").write_text(json.dumps({"k1": self.k1, "b": self.b}))

    @classmethod
    def load(cls, directory: Path) -> BM25Index:
        import bm25s

        chunk_ids = np.load(directory / "chunk_ids.npy")
        params = json.loads((directory / "params.json").read_text())
        retriever = bm25s.BM25.load(str(directory)) if len(chunk_ids) else bm25s.BM25()
        return cls(retriever, chunk_ids, params["k1"], params["b"])

    def __len__(self) -> int:
        return len(self.chunk_ids)

    def vocabulary(self) -> Vocabulary:
        """Every term of the indexed chunks, as ``tokenize`` writes it (one object per loaded index, so its
        grouping for near spellings is built once)."""
        if self._vocabulary is None:
            self._vocabulary = Vocabulary(self._retriever.vocab_dict.keys() if len(self.chunk_ids) else frozenset())
        return self._vocabulary

    def search(self, query: str, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Top-k (chunk id, score) with a positive score; ``allowed`` is a boolean row mask."""
        if not len(self.chunk_ids):
            return []
        vocab = self._retriever.vocab_dict
        tokens = [t for t in tokenize(query) if t in vocab]
        if not tokens:
            return []
        scores = np.asarray(self._retriever.get_scores(tokens), dtype=np.float32)
        if allowed is not None:
            scores = np.where(allowed, scores, 0.0)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(self.chunk_ids[i]), float(scores[i])) for i in top if scores[i] > 0]
