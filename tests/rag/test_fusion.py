"""Fusion of dense and BM25 rankings: pure logic, so plain lists stand in for the retrievers."""

from __future__ import annotations

from rag.fusion import convex_scores, fuse, normalise
from rag.settings import RetrievalSettings


def test_convex_keeps_a_confident_dense_winner_that_rrf_ties_away() -> None:
    # Dense is sure about 1 (0.9 vs 0.3); BM25 barely prefers 2 (10.0 vs 9.5). Rank fusion sees two
    # first places and ties; score fusion lets the confident list decide.
    dense = [(1, 0.90), (2, 0.30), (3, 0.25)]
    lexical = [(2, 10.0), (1, 9.5), (4, 1.0)]
    convex = fuse(dense, lexical, RetrievalSettings(fusion="convex", dense_weight=0.5, bm25_weight=0.5))
    rrf = fuse(dense, lexical, RetrievalSettings(fusion="rrf", dense_weight=1.0, bm25_weight=1.0))
    assert convex[0][0] == 1
    assert rrf[0][1] == rrf[1][1]  # a tie, broken only by chunk id


def test_weights_shift_the_winner() -> None:
    dense = [(1, 0.8), (2, 0.2)]
    lexical = [(2, 12.0), (1, 1.0)]
    assert fuse(dense, lexical, RetrievalSettings(dense_weight=0.9, bm25_weight=0.1))[0][0] == 1
    assert fuse(dense, lexical, RetrievalSettings(dense_weight=0.1, bm25_weight=0.9))[0][0] == 2


def test_one_empty_list_keeps_the_other_order_and_every_candidate() -> None:
    dense = [(5, 0.7), (3, 0.6), (9, 0.1)]
    fused = fuse(dense, [], RetrievalSettings())
    assert [cid for cid, _ in fused] == [5, 3, 9]
    assert fused[0][1] == 1.0  # normalised by the weights present, not diluted by the missing list


def test_zero_weight_list_still_contributes_candidates_last() -> None:
    fused = convex_scores([(1, 0.5), (2, 0.4)], [(7, 3.0)], 1.0, 0.0)
    assert [cid for cid, _ in sorted(fused.items(), key=lambda x: -x[1])] == [1, 2, 7]


def test_normalise_handles_equal_scores() -> None:
    assert normalise([(1, 2.0), (2, 2.0)]) == {1: 1.0, 2: 1.0}
    assert normalise([(1, 3.0), (2, 1.0), (3, 2.0)]) == {1: 1.0, 2: 0.0, 3: 0.5}


def test_rrf_matches_its_formula() -> None:
    s = RetrievalSettings(fusion="rrf", rrf_k=60, dense_weight=2.0, bm25_weight=1.0)
    fused = dict(fuse([(1, 0.9), (2, 0.8)], [(2, 5.0)], s))
    assert fused[1] == 2.0 / 61
    assert fused[2] == 2.0 / 62 + 1.0 / 61
