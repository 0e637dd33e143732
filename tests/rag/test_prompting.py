"""Prompt assembly, citation mapping and the follow-up rewrite's fallback."""

from __future__ import annotations

from pathlib import Path

from rag.prompting import (
    DECLINE_TEXT,
    Passage,
    build_messages,
    build_passages,
    fit_passages,
    map_citations,
    sane_rewrite,
)
from rag.types import Hit, StoredChunk


def chunk(cid: int, text: str, *, ordinal: int = 0, page: int | None = 1, doc: str = "h1") -> StoredChunk:
    return StoredChunk(cid, doc, ordinal, text, page, page, "Warranty", "NarrativeText", [f"/kb/{doc}.pdf"], "pdf")


def passages() -> list[Passage]:
    return build_passages(
        [
            Hit(chunk(1, "The warranty lasts 24 months from the date of purchase.", doc="manual"), 0.9),
            Hit(chunk(2, "Returns are accepted within 30 days with the receipt.", doc="policy", page=None), 0.8),
        ]
    )


class TestMessages:
    def test_sources_are_numbered_before_the_question_with_file_and_page(self) -> None:
        messages = build_messages("How long is the warranty?", passages())
        assert messages[0]["role"] == "system" and "[1]" in messages[0]["content"]
        user = messages[-1]["content"]
        assert user.index("[1] (manual.pdf, page 1") < user.index("[2] (policy.pdf, section") < user.index("Question:")
        assert user.rstrip().endswith("How long is the warranty?")

    def test_history_goes_between_system_and_sources(self) -> None:
        history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
        roles = [m["role"] for m in build_messages("q", passages(), history)]
        assert roles == ["system", "user", "assistant", "user"]

    def test_adjacent_hits_of_one_page_merge_into_one_passage(self) -> None:
        hits = [
            Hit(chunk(5, "second part", ordinal=5), 0.9),
            Hit(chunk(9, "elsewhere", ordinal=9), 0.8),
            Hit(chunk(4, "first part", ordinal=4), 0.7),
            Hit(chunk(6, "next page", ordinal=6, page=2), 0.6),
        ]
        merged = build_passages(hits)
        assert [p.n for p in merged] == [1, 2, 3]
        assert merged[0].text == "first part\nsecond part"
        assert [p.page for p in merged] == [1, 1, 2]
        assert len(build_passages(hits, merge_adjacent=False)) == 4

    def test_fit_keeps_best_passages_within_the_token_budget(self) -> None:
        def words(text: str) -> int:
            return len(text.split())

        many = build_passages([Hit(chunk(i, "word " * 50, ordinal=i * 10, doc=f"d{i}"), 1 - i / 10) for i in range(6)])
        kept = fit_passages(many, words, budget=130)
        assert [p.n for p in kept] == [1, 2]
        huge = build_passages([Hit(chunk(1, "word " * 1000), 1.0)])
        (only,) = fit_passages(huge, words, budget=100)
        assert words(only.text) <= 90


class TestCitations:
    def test_markers_map_to_source_and_page(self) -> None:
        text, cites, dropped = map_citations("The warranty lasts 24 months [1].", passages())
        assert text == "The warranty lasts 24 months [1]."
        assert [(c.n, Path(c.source).name, c.page) for c in cites] == [(1, "manual.pdf", 1)]
        assert dropped == 0

    def test_unknown_markers_are_dropped_and_counted(self) -> None:
        text, cites, dropped = map_citations("Returns within 30 days [2][7]. Also [9].", passages())
        assert "[7]" not in text and "[9]" not in text and "[2]" in text
        assert [c.n for c in cites] == [2] and dropped == 2

    def test_grouped_markers(self) -> None:
        _, cites, _ = map_citations("Both apply [1, 2].", passages())
        assert [c.n for c in cites] == [1, 2]

    def test_uncited_sentence_is_attributed_by_overlap(self) -> None:
        text, cites, _ = map_citations("Returns are accepted within 30 days.", passages())
        assert text.endswith("[2].") and [c.n for c in cites] == [2]

    def test_unsupported_sentence_gets_no_citation(self) -> None:
        _, cites, _ = map_citations("Penguins live in Antarctica.", passages())
        assert cites == []

    def test_decline_is_not_attributed(self) -> None:
        _, cites, _ = map_citations(DECLINE_TEXT, passages())
        assert cites == []


def test_rewrite_falls_back_to_previous_question() -> None:
    history = [{"role": "user", "content": "How long is the warranty?"}, {"role": "assistant", "content": "24 months"}]
    assert sane_rewrite("Does the warranty cover batteries?", "and batteries?", history) == (
        "Does the warranty cover batteries?"
    )
    assert sane_rewrite("", "and batteries?", history) == "How long is the warranty? and batteries?"
