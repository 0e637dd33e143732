"""The embedding cache (rag.embedder.VectorCache): the evidence units' vectors and the queries'."""

from __future__ import annotations

import numpy as np

from rag.embedder import VectorCache


class CountingEmbed:
    """Vectors that spell their text's length, and a record of what was embedded (unit tests only)."""

    def __init__(self) -> None:
        self.seen: list[list[str]] = []

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.seen.append(list(texts))
        return np.array([[len(t), 1.0] for t in texts], dtype=np.float32).reshape(len(texts), 2)


def test_each_text_is_embedded_once_and_rows_keep_the_callers_order() -> None:
    embed = CountingEmbed()
    cache = VectorCache(embed, size=10)
    first = cache(["aa", "b", "aa"])
    again = cache(["b", "ccc", "aa"])
    assert embed.seen == [["aa", "b"], ["ccc"]]  # a repeat within a call and across calls is not embedded again
    assert first[:, 0].tolist() == [2, 1, 2] and again[:, 0].tolist() == [1, 3, 2]


def test_the_least_recently_used_text_goes_first() -> None:
    embed = CountingEmbed()
    cache = VectorCache(embed, size=2)
    cache(["a", "bb"])
    cache(["a"])  # "a" used again: "bb" is now the oldest
    cache(["ccc"])
    cache(["a", "bb"])
    assert embed.seen == [["a", "bb"], ["ccc"], ["bb"]]


def test_size_zero_keeps_nothing() -> None:
    embed = CountingEmbed()
    cache = VectorCache(embed, size=0)
    cache(["a"])
    cache(["a"])
    assert embed.seen == [["a"], ["a"]]
    assert cache([]).shape == (0, 2)
