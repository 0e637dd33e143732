"""Tables, lists and code blocks: found (borderless PDF tables too), kept whole, each table row readable alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.chunk import chunk_document
from ingest.parse import parse_file
from ingest.parsers.common import ElementBuilder, table_text
from ingest.parsers.html import html_elements
from rag.settings import IngestSettings
from rag.types import Element, ParsedDocument
from tests import docgen

COLUMNS = [72, 200, 330]
MODELS = [
    ["Model", "Battery life", "Weight"],
    ["X200", "4 h", "1.2 kg"],
    ["X300", "6 h", "1.4 kg"],
    ["X400 Pro", "9 h", "1.9 kg"],
]
KEYED = (
    "Model | Battery life | Weight\n"
    "Model: X200 | Battery life: 4 h | Weight: 1.2 kg\n"
    "Model: X300 | Battery life: 6 h | Weight: 1.4 kg\n"
    "Model: X400 Pro | Battery life: 9 h | Weight: 1.9 kg"
)
PROSE = (
    "The widget charges from any USB-C port and reaches full charge in about two hours when the",
    "supplied adapter is used, and in about four hours from a computer port, which is slower.",
)


def words(text: str) -> int:
    return len(text.split())


def parse(path: Path) -> ParsedDocument:
    return parse_file(path, IngestSettings())


def tables(doc: ParsedDocument) -> list[Element]:
    return [e for e in doc.elements if e.kind == "Table"]


class TestTableText:
    def test_each_row_carries_its_header_names(self) -> None:
        assert table_text(MODELS) == KEYED

    def test_empty_cells_are_left_out_and_spanned_cells_written_once(self) -> None:
        rows = [["Part", "Size", "Size"], ["A", "", "3 mm"], ["B", "n/a", "n/a"]]
        assert table_text(rows) == "Part | Size\nPart: A | Size: 3 mm\nPart: B | Size: n/a"

    def test_without_a_header_rows_are_plain(self) -> None:
        assert table_text([["a", "1"], ["b", "2"]], header=False) == "a | 1\nb | 2"


class TestBorderlessPdfTables:
    def test_table_set_by_alignment_alone_is_one_table_with_keyed_rows(self, tmp_path: Path) -> None:
        page = [
            (72, 80, "Battery life by model is as follows:"),
            *docgen.table_rows(COLUMNS, 110, MODELS),
            (150, 190, "Table 1: Battery life and weight"),
            (72, 230, "Charge the battery fully before first use."),
        ]
        doc = parse(docgen.make_pdf_placed(tmp_path / "t.pdf", [page]))
        (table,) = tables(doc)
        assert (table.text, table.page) == (KEYED, 1)
        assert (doc.stats["tables"], doc.stats["tables_borderless"], doc.stats["tables_ruled"]) == (1, 1, 0)
        rest = [e.text for e in doc.elements if e.kind != "Table"]
        assert "Table 1: Battery life and weight" in rest and not any("X200" in t for t in rest)

    def test_wrapped_cell_stays_in_its_row(self, tmp_path: Path) -> None:
        rows = [["Key", "Action"], ["Ctrl-U", "erase the line before the cursor and"], ["Ctrl-D", "end input"]]
        page = [*docgen.table_rows([72, 200], 100, rows, pitch=24), (200, 136, "keep it in the kill ring")]
        (table,) = tables(parse(docgen.make_pdf_placed(tmp_path / "w.pdf", [page])))
        assert table.text.split("\n")[1] == (
            "Key: Ctrl-U | Action: erase the line before the cursor and keep it in the kill ring"
        )

    def test_table_continued_on_the_next_page_stays_one_table(self, tmp_path: Path) -> None:
        first = [(72, 640, "Prices per model:"), *docgen.table_rows(COLUMNS, 670, MODELS[:3])]
        more = [["X500", "12 h", "2.1 kg"], ["X600", "14 h", "2.4 kg"], ["X700", "15 h", "2.6 kg"]]
        second = [*docgen.table_rows(COLUMNS, 72, more), (72, 150, "All weights include the battery.")]
        doc = parse(docgen.make_pdf_placed(tmp_path / "c.pdf", [first, second]))
        one, two = tables(doc)
        assert (one.page, two.page) == (1, 2) and doc.stats["tables"] == 1
        assert two.text == (
            "Model | Battery life | Weight\n"
            "Model: X500 | Battery life: 12 h | Weight: 2.1 kg\n"
            "Model: X600 | Battery life: 14 h | Weight: 2.4 kg\n"
            "Model: X700 | Battery life: 15 h | Weight: 2.6 kg"
        )

    def test_repeated_header_on_the_next_page_is_not_a_row(self, tmp_path: Path) -> None:
        first = docgen.table_rows(COLUMNS, 670, MODELS[:3])
        second = docgen.table_rows(COLUMNS, 72, [MODELS[0], ["X500", "12 h", "2.1 kg"], ["X600", "14 h", "2.4 kg"]])
        doc = parse(docgen.make_pdf_placed(tmp_path / "r.pdf", [first, second]))
        assert tables(doc)[1].text.count("Model | Battery life | Weight") == 1 and doc.stats["tables"] == 1

    @pytest.mark.parametrize(
        "page",
        [
            # two columns of running text
            [(x, 80 + 13 * i, PROSE[i % 2][: 44 + i % 3]) for i in range(8) for x in (72, 320)],
            # a bulleted list with a wide gap after each bullet
            [(x, 80 + 16 * i, text) for i in range(4) for x, text in ((72, "•"), (100, f"Step {i} of the setup"))],
            # code with comments aligned in a column
            [(x, 80 + 12 * i, f"@Courier {t}") for i in range(4) for x, t in ((72, f"run {i}"), (250, "# note"))],
            # contents with dot leaders
            [(x, 80 + 14 * i, t) for i in range(5) for x, t in ((72, f"{i}.1 Part"), (200, ". " * 20), (500, str(i)))],
        ],
        ids=["two-column prose", "bullets", "code", "contents"],
    )
    def test_aligned_text_that_is_no_table_is_left_alone(self, tmp_path: Path, page: list) -> None:
        doc = parse(docgen.make_pdf_placed(tmp_path / "n.pdf", [page]))
        assert tables(doc) == [] and doc.stats["tables"] == 0

    def test_ruled_tables_are_counted_apart(self, tmp_path: Path) -> None:
        doc = parse(docgen.make_manual_pdf(tmp_path / "m.pdf"))
        assert (doc.stats["tables_ruled"], doc.stats["tables_borderless"]) == (1, 0)


SMALL = IngestSettings(chunk_tokens=40, chunk_overlap=0, min_chunk_tokens=4, max_table_tokens=60)


def el(text: str, kind: str = "NarrativeText", heading: str = "Specs") -> Element:
    return Element(text, kind, 1, heading)


def chunks_of(*elements: Element, settings: IngestSettings = SMALL) -> list:
    doc = ParsedDocument("m.pdf", "pdf", [Element("Specs", "Title", 1, "Specs"), *elements])
    return chunk_document(doc, words, settings)


class TestTableChunks:
    def test_caption_below_opens_the_table_chunk_and_is_not_repeated_as_prose(self) -> None:
        chunks = chunks_of(el("Weights vary."), el(KEYED, "Table"), el("Table 1: Models", "Caption"))
        table = next(c for c in chunks if c.element_type == "Table")
        assert table.text == f"Table 1: Models\n{KEYED}"
        assert not any("Table 1" in c.text for c in chunks if c is not table)

    def test_lead_in_sentence_opens_the_table_chunk(self) -> None:
        chunks = chunks_of(el("We ship three models. They compare as follows:"), el(KEYED, "Table"))
        table = next(c for c in chunks if c.element_type == "Table")
        assert table.text == f"They compare as follows:\n{KEYED}"

    def test_large_table_pieces_repeat_lead_in_and_header_and_keep_rows_whole(self) -> None:
        rows = [MODELS[0], *[[f"X{i}", f"{i} h", f"{i}.5 kg"] for i in range(30)]]
        chunks = chunks_of(el("Table 2: All models", "Caption"), el(table_text(rows), "Table"))
        pieces = [c for c in chunks if c.element_type == "Table"]
        assert len(pieces) > 2
        for piece in pieces:
            lines = piece.text.split("\n")
            assert lines[:2] == ["Table 2: All models", "Model | Battery life | Weight"], piece.text
            assert all(line.startswith("Model: X") and line.endswith(" kg") for line in lines[2:])
        assert sum(len(p.text.split("\n")) - 2 for p in pieces) == 30


class TestBlocksStayWithTheirLeadIn:
    def test_list_moves_to_a_fresh_chunk_with_its_lead_in(self) -> None:
        items = [el(f"item {i} ok", "ListItem") for i in range(4)]
        chunks = chunks_of(el(" ".join(["filler"] * 30) + "."), el("Do as follows:"), *items)
        assert [c.text for c in chunks][1:] == ["Do as follows:\nitem 0 ok\nitem 1 ok\nitem 2 ok\nitem 3 ok"]

    def test_long_list_is_cut_between_items_each_piece_opening_with_the_lead_in(self) -> None:
        items = [el(f"item {i} has four words", "ListItem") for i in range(20)]
        chunks = chunks_of(el("Intro text here. The steps are:"), *items)
        assert len(chunks) > 2
        assert chunks[0].text.startswith("Intro text here. The steps are:\nitem 0")
        for chunk in chunks[1:]:
            assert chunk.text.startswith("The steps are:\nitem ")
        assert sum(c.text.count("has four words") for c in chunks) == 20

    def test_code_block_stays_with_its_lead_in(self) -> None:
        code = "apt update\napt install foo\napt clean"
        chunks = chunks_of(el(" ".join(["filler"] * 36) + "."), el("Run:"), el(code, "CodeSnippet"))
        assert chunks[-1].text == f"Run:\n{code}"

    def test_list_without_lead_in_is_packed_as_before(self) -> None:
        chunks = chunks_of(el("Plain text."), el("one", "ListItem"), el("two", "ListItem"))
        assert [c.text for c in chunks] == ["Plain text.\n\none\n\ntwo"]


class TestHtmlStructure:
    def walk(self, html: str) -> list[Element]:
        builder = ElementBuilder()
        html_elements(f"<html><body>{html}</body></html>", builder, main_content=False)
        return builder.elements

    def test_rowspan_and_colspan_keep_each_value_in_its_own_row_and_column(self) -> None:
        (table,) = [
            e
            for e in self.walk(
                "<table><tr><th>Model</th><th>Pack</th><th>Battery life</th></tr>"
                "<tr><td rowspan='2'>X200</td><td>small</td><td>4 h</td></tr>"
                "<tr><td>large</td><td>6 h</td></tr>"
                "<tr><td>X300</td><td colspan='2'>not sold</td></tr></table>"
            )
            if e.kind == "Table"
        ]
        assert table.text.split("\n")[1:] == [
            "Model: X200 | Pack: small | Battery life: 4 h",
            "Model: X200 | Pack: large | Battery life: 6 h",
            "Model: X300 | Pack: not sold | Battery life: not sold",
        ]

    def test_table_with_row_headers_only_has_no_header_row(self) -> None:
        (table,) = [
            e
            for e in self.walk(
                "<table><tr><th>Port</th><td>8080</td></tr><tr><th>Host</th><td>0.0.0.0</td></tr></table>"
            )
            if e.kind == "Table"
        ]
        assert table.text == "Port | 8080\nHost | 0.0.0.0"

    def test_table_without_th_cells_keys_its_rows_only_by_a_first_row_that_names_columns(self) -> None:
        """SQLite's strftime table: a spacer row, then data rows; no row names the columns."""
        data = "".join(
            f"<tr><td> {f} </td><td></td><td> {m}</td></tr>"
            for f, m in [("%d", "day of month: 00"), ("%j", "day of year: 001-366")]
        )
        (table,) = [
            e for e in self.walk(f"<table><tr><td></td><td></td><td></td></tr>{data}</table>") if e.kind == "Table"
        ]
        assert table.text == "%d | day of month: 00\n%j | day of year: 001-366"
        named = "<table><tr><td>Option</td><td>Default</td></tr><tr><td>--level</td><td>6</td></tr></table>"
        (table,) = [e for e in self.walk(named) if e.kind == "Table"]
        assert table.text == "Option | Default\nOption: --level | Default: 6"

    def test_definition_list_entries_keep_term_and_definition_together(self) -> None:
        elements = self.walk(
            "<p>The options are:</p><dl><dt>--verbose</dt><dd><p>Print more.</p><p>Twice: all.</p></dd>"
            "<dt>-q</dt><dt>--quiet</dt><dd>Print nothing.</dd><dt>--conf</dt><dd><pre>a = 1</pre></dd></dl>"
        )
        assert [(e.kind, e.text) for e in elements] == [
            ("NarrativeText", "The options are:"),
            ("ListItem", "--verbose: Print more.\nTwice: all."),
            ("ListItem", "-q / --quiet: Print nothing."),
            ("ListItem", "--conf:"),
            ("CodeSnippet", "a = 1"),
        ]

    def test_caption_goes_into_the_table_chunk(self, tmp_path: Path) -> None:
        page = tmp_path / "p.html"
        page.write_text(
            "<html><body><h1>Specs</h1><p>Some text about the range of models.</p>"
            "<table><caption>Models and weights</caption><tr><th>Model</th><th>Weight</th></tr>"
            "<tr><td>X200</td><td>1.2 kg</td></tr></table></body></html>"
        )
        chunks = chunk_document(parse(page), words, IngestSettings())
        table = next(c for c in chunks if c.element_type == "Table")
        assert table.text == "Models and weights\nModel | Weight\nModel: X200 | Weight: 1.2 kg"


class TestOfficeTables:
    def test_docx_rows_carry_header_names_and_a_caption(self, tmp_path: Path) -> None:
        import docx

        path = docgen.make_docx(tmp_path / "d.docx", [("h1", "Specs"), ("table", "Model|Weight\nX200|1.2 kg")])
        document = docx.Document(str(path))
        document.add_paragraph("Table 3: Weights", style="Caption")
        document.save(str(path))
        doc = parse(path)
        assert [(e.kind, e.text) for e in doc.elements[1:]] == [
            ("Table", "Model | Weight\nModel: X200 | Weight: 1.2 kg"),
            ("Caption", "Table 3: Weights"),
        ]

    def test_pptx_table_rows_carry_header_names(self, tmp_path: Path) -> None:
        path = docgen.make_pptx(tmp_path / "s.pptx", [("Prices", ["Per unit"])], tables={1: "Item|Price\nPen|2 EUR"})
        (table,) = tables(parse(path))
        assert table.text == "Item | Price\nItem: Pen | Price: 2 EUR"
