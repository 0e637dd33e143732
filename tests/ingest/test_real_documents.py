"""Documents as they come from real publishers: page furniture, contents, tables, code, scans, web exports."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from docqa.services import Services
from ingest.chunk import chunk_document
from ingest.parse import parse_file
from ingest.parsers.pdf_layout import is_contents_page
from ingest.pipeline import discover
from rag.prompting import build_passages, format_source
from rag.settings import IngestSettings
from rag.store import CollectionReader
from rag.types import ParsedDocument, page_ref
from tests import docgen


@pytest.fixture(scope="module")
def manual(tmp_path_factory: pytest.TempPathFactory) -> ParsedDocument:
    path = docgen.make_manual_pdf(tmp_path_factory.mktemp("manual") / "manual.pdf")
    return parse_file(path, IngestSettings())


def texts(doc: ParsedDocument) -> str:
    return "\n".join(f"{e.heading} :: {e.text}" for e in doc.elements)


class TestManualPdf:
    def test_running_header_footer_and_contents_are_gone(self, manual: ParsedDocument) -> None:
        everything = texts(manual)
        for noise in ("Kestrel Widget Manual", "Chapter 2.", "Contents", ". . .", "part 1"):
            assert noise not in everything, noise
        assert [e.text for e in manual.elements if e.kind == "Title"] == [
            f"{n}. {t}" for n, t in enumerate(docgen.MANUAL_TOPICS, start=1)
        ]
        assert manual.stats["running_lines_dropped"] == 8  # a header and a footer on each chapter page
        assert manual.stats["contents_pages"] == 1

    def test_pages_and_printed_labels(self, manual: ParsedDocument) -> None:
        cleaning = next(e for e in manual.elements if e.text.startswith("This chapter explains cleaning"))
        assert cleaning.page == 3
        assert manual.page_labels == {1: "i", 2: "1", 3: "2", 4: "3", 5: "4"}
        chunks = chunk_document(manual, lambda t: len(t.split()), IngestSettings())
        table = next(c for c in chunks if c.element_type == "Table")
        assert (table.page, table.page_label) == (3, "2")
        assert page_ref(table.page, table.page_label) == "page 2 (PDF page 3)"

    def test_ruled_table_is_one_element_with_wrapped_cell_joined(self, manual: ParsedDocument) -> None:
        (table,) = [e for e in manual.elements if e.kind == "Table"]
        assert table.text == (
            "Part | Interval | Note\nPart: Filter | Interval: 3 months | Note: Rinse in cold water\n"
            "Part: Brush | Interval: 6 months | Note: Cut hair off\nPart: Tank | Interval: weekly | Note: Dry it"
        )
        assert table.heading == "2. Cleaning" and manual.stats["tables"] == 1
        assert "Rinse in" not in texts(manual).replace(table.text, "")  # its cells are not also prose

    def test_code_keeps_line_breaks_and_indentation(self, manual: ParsedDocument) -> None:
        (code,) = [e for e in manual.elements if e.kind == "CodeSnippet"]
        assert code.text == (
            "def clean(widget):\n    for brush in widget.brushes:\n        brush.spin(rpm=1200)\n    return widget"
        )

    def test_footnote_marker_is_set_apart(self, manual: ParsedDocument) -> None:
        assert "grounded socket[^1]" in texts(manual) and "socket1" not in texts(manual)

    def test_printed_numbers_without_page_labels(self, tmp_path: Path) -> None:
        # Front matter unnumbered: physical page 3 prints "1"; the footer's number follows the page.
        pages = [["Cover page of the guide."], ["Legal notice text."]] + [
            [f"Topic {n} is explained here in plain words.", *[""] * 40, f"Widget Guide {n} / 4"] for n in range(1, 5)
        ]
        doc = parse_file(docgen.make_pdf_lines(tmp_path / "g.pdf", pages), IngestSettings())
        assert "Widget Guide" not in texts(doc)
        assert doc.page_labels == {3: "1", 4: "2", 5: "3", 6: "4"}

    def test_contents_detection(self) -> None:
        entries = [f"{n}.{m} Section title {n}.{m} " + ". " * 20 + f"{n * 3 + m}" for n in (1, 2) for m in (1, 2, 3)]
        assert is_contents_page(["Contents", *entries])
        prose = ["This sentence mentions chapter 4 and page 12 in passing.", "Another line of text 13."] * 4
        assert not is_contents_page(prose)


class TestOcr:
    def mixed(self, tmp_path: Path) -> Path:
        from pypdf import PdfReader, PdfWriter

        typed = docgen.make_pdf(tmp_path / "t.pdf", [[("p", "Typed page about the pump.")]])
        scan = docgen.make_scanned_pdf(tmp_path / "s.pdf", pages=1, text="pump pressure is seven bar")
        writer = PdfWriter()
        for page in [*PdfReader(typed).pages, *PdfReader(scan).pages]:
            writer.add_page(page)
        path = tmp_path / "mixed.pdf"
        with open(path, "wb") as fh:
            writer.write(fh)
        return path

    def test_page_without_text_layer_is_read(self, tmp_path: Path) -> None:
        doc = parse_file(self.mixed(tmp_path), IngestSettings())
        scanned = [e for e in doc.elements if e.page == 2]
        assert scanned and any("pressure" in e.text and "seven bar" in e.text for e in scanned)
        assert doc.stats["ocr_pages"] == 1 and doc.warnings == []
        assert [e.text for e in doc.elements if e.page == 1] == ["Typed page about the pump."]

    def test_page_over_the_time_limit_is_reported(self, tmp_path: Path) -> None:
        doc = parse_file(self.mixed(tmp_path), IngestSettings(ocr_page_timeout_s=0.01))
        assert [e.page for e in doc.elements] == [1]
        assert doc.stats["ocr_pages"] == 0
        assert "page 2: OCR took longer than 0.01 s" in doc.warnings[0]
        assert doc.warnings[1].startswith("page 2 has no text layer")


WEB_PAGE = """<!DOCTYPE html><html><head><title>Chapter 6. APT</title></head><body>
<div id="banner"><a href="/get/">Download the ebook</a></div>
<ul class="docnav top"><li><a href="p.html">Prev</a></li><li>The Handbook</li><li><a href="n.html">Next</a></li></ul>
<div class="chapter"><h1>Chapter 6. APT</h1>
<div class="toc"><dl><dt><a href="#a">6.1. Sources</a></dt><dt><a href="#b">6.2. Commands</a></dt>
<dt><a href="#c">6.3. Upgrades</a></dt></dl></div>
<h2 id="a">6.1. Sources</h2><p>Each active line of sources.list names a repository and its components.</p>
<table><tr><th>Field</th><th>Meaning</th></tr><tr><td>deb</td><td>binary packages</td></tr></table>
<h2 id="b">6.2. Commands</h2><p>Use apt update before apt upgrade to refresh the package lists.</p>
<pre>apt update
  apt upgrade</pre>
</div>
<div role="navigation"><a href="/">Home</a> <a href="/a">About</a> <a href="/c">Contact</a></div>
<footer><p>Copyright 2024 the authors. All rights reserved.</p></footer>
</body></html>"""


class TestWebExport:
    def test_navigation_banner_contents_and_footer_are_dropped(self, tmp_path: Path) -> None:
        path = tmp_path / "apt.html"
        path.write_text(WEB_PAGE, encoding="utf-8")
        doc = parse_file(path, IngestSettings())
        everything = texts(doc)
        for noise in ("Download the ebook", "Prev", "Next", "Copyright", "Contact", "6.3. Upgrades"):
            assert noise not in everything, noise
        assert [e.text for e in doc.elements if e.kind == "Title"] == [
            "Chapter 6. APT",
            "6.1. Sources",
            "6.2. Commands",
        ]
        table = next(e for e in doc.elements if e.kind == "Table")
        assert table.text == "Field | Meaning\nField: deb | Meaning: binary packages"
        assert table.heading == "6.1. Sources"
        code = next(e for e in doc.elements if e.kind == "CodeSnippet")
        assert code.text == "apt update\n  apt upgrade"


class TestFolders:
    def test_non_documents_are_skipped_and_globs_select(self, tmp_path: Path) -> None:
        root = tmp_path / "site"
        for name in ("index.html", "guide.md", "logo.png", "style.css", "Makefile", "sub/notes.txt", "sub/x.js"):
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text("text")
        found = discover([root])
        assert sorted(p.name for p in found.files) == ["guide.md", "index.html", "notes.txt"]
        assert sorted(Path(s["path"]).name for s in found.skipped) == ["Makefile", "logo.png", "style.css", "x.js"]
        assert found.failed == [] and "not a document" in found.skipped[0]["reason"]
        found = discover([root], include=["*.md", "sub/*"], exclude=["*.js"])
        assert sorted(p.name for p in found.files) == ["guide.md", "notes.txt"]
        assert [Path(s["path"]).name for s in found.skipped] == []
        named = discover([root / "logo.png"])  # a file named on its own is a request: unsupported fails
        assert named.failed and not named.skipped


class TestIndexedLabels:
    def test_citation_shows_the_printed_page_and_old_indexes_still_open(
        self, services: Services, tmp_path: Path
    ) -> None:
        kb = tmp_path / "kb"
        docgen.make_manual_pdf(kb / "manual.pdf")
        (kb / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n")
        report = services.ingestor.ingest([kb], "kb")
        assert report.ok and [Path(s["path"]).name for s in report.skipped] == ["logo.png"]
        (figures,) = report.documents
        assert (figures["pages"], figures["table_chunks"], figures["contents_pages"]) == (5, 1, 1)
        reader = services.reader("kb")
        hits = services.retriever.search(reader, "filter interval brush tank rinse").hits
        table = next(h for h in hits if h.chunk.element_type == "Table")
        assert (table.chunk.page, table.chunk.page_label) == (3, "2")
        (passage,) = build_passages([table])
        assert "manual.pdf, page 2 (PDF page 3)" in format_source(passage)
        assert passage.citation().page_label == "2"

        # A generation written before page labels existed: readable, labels None; the next write adds them.
        docstore = reader.paths.root / reader.generation / "docstore.sqlite"
        with sqlite3.connect(docstore) as conn:
            conn.execute("ALTER TABLE chunks DROP COLUMN page_label")
        old = CollectionReader(services.settings, "kb")
        assert all(c.page_label is None for c in old.chunks([table.chunk.id]).values())
        docgen.make_txt(kb / "more.txt", "Another document about the widget's charging dock.")
        assert services.ingestor.ingest([kb], "kb").ok
        new = CollectionReader(services.settings, "kb")
        with sqlite3.connect(new.paths.root / new.generation / "docstore.sqlite") as conn:
            assert any(r[1] == "page_label" for r in conn.execute("PRAGMA table_info(chunks)"))  # the column is back
        assert new.info().documents == 2
