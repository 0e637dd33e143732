"""Parsers against real generated files: text, kinds, page numbers, headings and titles for every format."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest

from ingest.parse import SUPPORTED_SUFFIXES, is_supported, parse_file
from rag.settings import IngestSettings
from rag.types import Element, ParsedDocument
from tests import docgen
from tests.helpers import SAMPLES


@pytest.fixture
def settings() -> IngestSettings:
    return IngestSettings()


def find(doc: ParsedDocument, needle: str) -> Element:
    """The first element containing ``needle`` (fails the test when there is none)."""
    for el in doc.elements:
        if needle in el.text:
            return el
    raise AssertionError(f"{needle!r} not found in {[e.text for e in doc.elements]}")


def titles(doc: ParsedDocument) -> list[str]:
    return [e.text for e in doc.elements if e.kind == "Title"]


class TestSuffixes:
    def test_supported_types(self) -> None:
        expected = {".pdf", ".docx", ".pptx", ".html", ".htm", ".md", ".markdown", ".txt", ".csv", ".eml"}
        assert expected <= set(SUPPORTED_SUFFIXES)
        assert SUPPORTED_SUFFIXES[".htm"] == "html" and SUPPORTED_SUFFIXES[".markdown"] == "md"
        assert SUPPORTED_SUFFIXES[".rst"] == "txt"

    def test_is_supported(self) -> None:
        assert is_supported(Path("a/B.PDF")) and is_supported(Path("notes.md"))
        assert not is_supported(Path("photo.png")) and not is_supported(Path("Makefile"))
        assert not is_supported(Path("~$report.docx"))  # an Office lock file, not a document


class TestPdf:
    def test_pages_come_out_in_order_with_headings(self, tmp_path: Path, settings: IngestSettings) -> None:
        pages = [
            [("title", "Pump Handbook"), ("h1", "Installation"), ("p", "Mount the pump on a level plinth.")],
            [
                ("h1", "Operation"),
                ("p", "The pump delivers 40 litres per minute."),
                ("li", "Prime before use"),
            ],
            [("h1", "Disposal"), ("p", "Return the pump to an authorised recycling centre.")],
        ]
        doc = parse_file(docgen.make_pdf(tmp_path / "h.pdf", pages), settings)
        assert doc.doc_type == "pdf" and doc.title == "Pump Handbook"
        assert titles(doc) == ["Pump Handbook", "Installation", "Operation", "Disposal"]
        assert [e.page for e in doc.elements] == sorted(e.page for e in doc.elements)
        assert find(doc, "level plinth").page == 1 and find(doc, "level plinth").heading == "Installation"
        assert find(doc, "40 litres").page == 2 and find(doc, "40 litres").heading == "Operation"
        assert find(doc, "Prime before use").kind == "ListItem"
        assert find(doc, "Prime before use").text == "Prime before use"  # bullet glyph removed
        assert find(doc, "recycling centre").page == 3 and find(doc, "recycling centre").heading == "Disposal"

    def test_wrapped_paragraph_is_one_element_with_hyphenation_mended(
        self, tmp_path: Path, settings: IngestSettings
    ) -> None:
        lines = [
            "Cleaning",
            "",
            "Remove the filter and rinse the mainte-",
            "nance tray under warm water.",
            "",
            "Dry everything before reassembly.",
        ]
        doc = parse_file(docgen.make_pdf_lines(tmp_path / "w.pdf", [lines]), settings)
        assert find(doc, "rinse").text == "Remove the filter and rinse the maintenance tray under warm water."
        assert find(doc, "Dry everything").text == "Dry everything before reassembly."

    def test_bold_lines_of_body_size_are_headings(self, tmp_path: Path, settings: IngestSettings) -> None:
        bold = "Helvetica-Bold"
        lines = [
            (bold, 11, "Battery care"),
            "",
            "Charge the battery fully once a month.",
            "",
            (bold, 11, "Storage"),
            "",
            "Store the device in a dry place.",
        ]
        doc = parse_file(docgen.make_pdf_lines(tmp_path / "b.pdf", [lines]), settings)
        assert titles(doc) == ["Battery care", "Storage"]
        assert find(doc, "dry place").heading == "Storage"

    def test_title_case_lines_are_headings_without_typographic_contrast(
        self, tmp_path: Path, settings: IngestSettings
    ) -> None:
        lines = [
            "Battery Care",
            "",
            "Charge the battery fully once a month.",
            "",
            "Press the button",
            "",
            "Storage And Transport",
            "",
            "Keep it dry.",
        ]
        doc = parse_file(docgen.make_pdf_lines(tmp_path / "t.pdf", [lines]), settings)
        assert titles(doc) == ["Battery Care", "Storage And Transport"]  # "Press the button" is no heading
        assert find(doc, "Keep it dry").heading == "Storage And Transport"

    def test_running_header_footer_and_page_numbers_are_dropped(
        self, tmp_path: Path, settings: IngestSettings
    ) -> None:
        words = ["Pumps", "Valves", "Seals", "Gauges"]
        pages: list[list[docgen.Line]] = [
            [
                "ACME Confidential",
                f"{w} are explained here.",
                "",
                "",
                ("Helvetica", 8, f"Printed 2025-03-0{n}"),
                f"Page {n} of 4",
            ]
            for n, w in enumerate(words, 1)
        ]
        doc = parse_file(docgen.make_pdf_lines(tmp_path / "f.pdf", pages), settings)
        assert [e.text for e in doc.elements] == [f"{w} are explained here." for w in words]
        assert [e.page for e in doc.elements] == [1, 2, 3, 4]

    def test_numbered_headings_opening_every_page_are_kept(
        self, tmp_path: Path, settings: IngestSettings
    ) -> None:
        pages = [
            [("h1", f"Article {n}"), ("p", f"Clause text number {n} of the contract.")] for n in range(1, 5)
        ]
        doc = parse_file(docgen.make_pdf(tmp_path / "a.pdf", pages), settings)
        assert titles(doc) == ["Article 1", "Article 2", "Article 3", "Article 4"]
        assert find(doc, "number 3").heading == "Article 3" and find(doc, "number 3").page == 3

    def test_legacy_characters_survive(self, tmp_path: Path, settings: IngestSettings) -> None:
        pages = [[("h1", "Café"), ("p", "A naïve price: 5 € for crème brûlée.")]]
        doc = parse_file(docgen.make_pdf(tmp_path / "c.pdf", pages), settings)
        assert find(doc, "naïve").text == "A naïve price: 5 € for crème brûlée."


class TestDocx:
    def test_heading_styles_lists_and_tables(self, tmp_path: Path, settings: IngestSettings) -> None:
        blocks = [
            ("title", "Travel Policy"),
            ("p", "This policy covers business travel."),
            ("h1", "Booking"),
            ("p", "Book trains for trips under 500 km."),
            ("li", "Use the company travel portal"),
            ("h2", "Hotels"),
            ("table", "City|Nightly cap\nParis|180 EUR\nBerlin|140 EUR"),
        ]
        doc = parse_file(docgen.make_docx(tmp_path / "p.docx", blocks), settings)
        assert doc.doc_type == "docx" and doc.title == "Travel Policy"
        assert titles(doc) == ["Travel Policy", "Booking", "Hotels"]
        assert find(doc, "500 km").heading == "Booking" and find(doc, "500 km").page is None
        assert find(doc, "travel portal").kind == "ListItem"
        table = find(doc, "Nightly cap")
        assert table.kind == "Table" and table.heading == "Hotels"
        assert table.text == (
            "City | Nightly cap\nCity: Paris | Nightly cap: 180 EUR\nCity: Berlin | Nightly cap: 140 EUR"
        )

    def test_short_bold_paragraph_is_a_heading(self, tmp_path: Path, settings: IngestSettings) -> None:
        import docx

        document = docx.Document()
        document.add_paragraph().add_run("Expense Claims").bold = True
        document.add_paragraph("Submit claims within 60 days.")
        document.add_paragraph().add_run("This whole sentence is bold but it is body text.").bold = True
        path = tmp_path / "b.docx"
        document.save(str(path))
        doc = parse_file(path, settings)
        assert titles(doc) == ["Expense Claims"]
        assert find(doc, "60 days").heading == "Expense Claims"


class TestPptx:
    def test_slides_are_pages_in_order(self, tmp_path: Path, settings: IngestSettings) -> None:
        slides = [
            ("Quarterly Review", ["Agenda and goals"]),
            ("Sales", ["Revenue grew 12%", "Churn fell"]),
            ("Hiring", ["Nine engineers joined"]),
        ]
        path = docgen.make_pptx(
            tmp_path / "s.pptx",
            slides,
            notes={2: "Mention the Nordic region."},
            tables={3: "Team|Hires\nCore|5"},
        )
        doc = parse_file(path, settings)
        assert doc.doc_type == "pptx" and doc.title == "Quarterly Review"
        assert titles(doc) == ["Quarterly Review", "Sales", "Hiring"]
        assert [e.page for e in doc.elements if e.kind == "Title"] == [1, 2, 3]
        assert find(doc, "Revenue grew").page == 2 and find(doc, "Revenue grew").heading == "Sales"
        assert find(doc, "Revenue grew").kind == "ListItem"
        assert find(doc, "Nordic region").page == 2  # speaker notes
        table = find(doc, "Hires")
        assert (table.kind, table.page, table.text) == ("Table", 3, "Team | Hires\nTeam: Core | Hires: 5")

    def test_untitled_slide_does_not_inherit_a_heading(
        self, tmp_path: Path, settings: IngestSettings
    ) -> None:
        import pptx
        from pptx.util import Inches

        presentation = pptx.Presentation()
        first = presentation.slides.add_slide(presentation.slide_layouts[1])
        first.shapes.title.text = "Intro"
        first.placeholders[1].text_frame.text = "Welcome"
        blank = presentation.slides.add_slide(presentation.slide_layouts[6])
        blank.shapes.add_textbox(Inches(1), Inches(1), Inches(4), Inches(1)).text_frame.text = "Loose note"
        path = tmp_path / "u.pptx"
        presentation.save(str(path))
        doc = parse_file(path, settings)
        note = find(doc, "Loose note")
        assert (note.page, note.heading, note.kind) == (2, None, "NarrativeText")


class TestHtmlAndMarkdown:
    BLOCKS: ClassVar[list[docgen.Block]] = [
        ("h1", "Help Centre"),
        ("p", "Answers to common questions."),
        ("h2", "Shipping"),
        ("p", "Orders ship within 2 days."),
        ("li", "Tracking by e-mail"),
        ("table", "Zone|Cost\nEU|free"),
    ]

    def check(self, doc: ParsedDocument) -> None:
        assert titles(doc) == ["Help Centre", "Shipping"]
        assert find(doc, "2 days").heading == "Shipping" and find(doc, "2 days").kind == "NarrativeText"
        assert find(doc, "Tracking").kind == "ListItem"
        assert find(doc, "Zone").kind == "Table" and find(doc, "Zone").text == "Zone | Cost\nZone: EU | Cost: free"
        assert all(e.page is None for e in doc.elements)

    def test_html(self, tmp_path: Path, settings: IngestSettings) -> None:
        doc = parse_file(docgen.make_html(tmp_path / "h.html", self.BLOCKS, title="Acme Help"), settings)
        self.check(doc)
        assert doc.title == "Acme Help"
        text = " ".join(e.text for e in doc.elements)
        assert "script text" not in text and "Home" not in text  # <script> and <nav> are skipped

    def test_html_inline_markup_and_bare_text(self, tmp_path: Path, settings: IngestSettings) -> None:
        html = (
            "<html><body><div>Bare <b>bold</b> text<br>second line<div hidden>secret</div></div>"
            "<p>Para <a href='#'>link</a>.</p><!-- a comment --></body></html>"
        )
        doc = parse_file(docgen.make_txt(tmp_path / "i.htm", html), settings)
        assert [e.text for e in doc.elements] == ["Bare bold text\nsecond line", "Para link."]

    def test_markdown(self, tmp_path: Path, settings: IngestSettings) -> None:
        doc = parse_file(docgen.make_md(tmp_path / "m.md", self.BLOCKS), settings)
        self.check(doc)
        assert doc.doc_type == "md" and doc.title == "Help Centre"

    def test_markdown_front_matter_title(self, tmp_path: Path, settings: IngestSettings) -> None:
        text = "---\ntitle: Release Guide\nauthor: x\n---\n\nIntro text here.\n\n```\ncode = 1\n```\n"
        doc = parse_file(docgen.make_txt(tmp_path / "f.markdown", text), settings)
        assert doc.title == "Release Guide"
        assert [(e.kind, e.text) for e in doc.elements] == [
            ("NarrativeText", "Intro text here."),
            ("CodeSnippet", "code = 1"),
        ]

    @pytest.mark.parametrize("declare", [True, False])
    def test_cp1252_html(self, tmp_path: Path, settings: IngestSettings, declare: bool) -> None:
        meta = '<meta charset="windows-1252">' if declare else ""
        html = f"<html><head>{meta}</head><body><p>Le café naïve coûte 5 € – très bon.</p></body></html>"
        doc = parse_file(docgen.make_txt(tmp_path / "c.html", html, encoding="cp1252"), settings)
        assert doc.elements[0].text == "Le café naïve coûte 5 € – très bon."


class TestEmail:
    def test_subject_context_body_and_attachment(self, tmp_path: Path, settings: IngestSettings) -> None:
        body = "Hello Sam,\n\nYour replacement ships\non Monday.\n\nKind regards\nAlex"
        path = docgen.make_eml(
            tmp_path / "m.eml",
            subject="Order 991 update",
            body=body,
            attachments={"invoice.pdf": b"%PDF-1.4"},
        )
        doc = parse_file(path, settings)
        assert doc.doc_type == "eml" and doc.title == "Order 991 update"
        assert doc.elements[0] == Element("Order 991 update", "Title", None, "Order 991 update")
        context = doc.elements[1].text
        assert "From: Support <support@example.com>" in context and "To: Customer" in context
        assert "Date: Fri, 14 Mar 2025" in context
        assert find(doc, "replacement").text == "Your replacement ships on Monday."
        assert all(e.heading == "Order 991 update" for e in doc.elements)  # "Kind regards" opens no section
        assert doc.warnings and "invoice.pdf" in doc.warnings[0]

    def test_html_only_body_is_converted(self, tmp_path: Path, settings: IngestSettings) -> None:
        from email.message import EmailMessage

        msg = EmailMessage()
        msg["Subject"], msg["From"] = "Newsletter", "news@example.com"
        msg.set_content(
            "<html><body><h2>Offers</h2><p>Filters are 20% off.</p></body></html>", subtype="html"
        )
        path = tmp_path / "n.eml"
        path.write_bytes(msg.as_bytes())
        doc = parse_file(path, settings)
        assert find(doc, "20% off").heading == "Offers"
        assert "<p>" not in " ".join(e.text for e in doc.elements)

    def test_latin1_body(self, tmp_path: Path, settings: IngestSettings) -> None:
        from email.message import EmailMessage

        msg = EmailMessage()
        msg["Subject"], msg["From"] = "Menu", "chef@example.com"
        msg.set_content("Le café est prêt.", charset="iso-8859-1", cte="quoted-printable")
        path = tmp_path / "l.eml"
        path.write_bytes(msg.as_bytes())
        assert find(parse_file(path, settings), "café").text == "Le café est prêt."


class TestCsvAndText:
    def test_csv_is_a_table_with_its_header(self, tmp_path: Path, settings: IngestSettings) -> None:
        rows = [["part", "name", "price"], ["BAT-1", "Battery", "39.90"], ["FLT-2", "Filter, HEPA", "12.50"]]
        doc = parse_file(docgen.make_csv(tmp_path / "p.csv", rows), settings)
        assert [(e.kind, e.text) for e in doc.elements] == [
            ("Table", "part | name | price\npart: BAT-1 | name: Battery | price: 39.90\n"
             "part: FLT-2 | name: Filter, HEPA | price: 12.50")
        ]

    def test_semicolon_cp1252_csv(self, tmp_path: Path, settings: IngestSettings) -> None:
        rows = [["Artikel", "Preis"], ["Café crème", "3,50 €"], ["Brötchen", "0,90 €"]]
        path = docgen.make_csv(tmp_path / "d.csv", rows, encoding="cp1252", delimiter=";")
        doc = parse_file(path, settings)
        assert doc.elements[0].text == (
            "Artikel | Preis\nArtikel: Café crème | Preis: 3,50 €\nArtikel: Brötchen | Preis: 0,90 €"
        )

    def test_large_csv_comes_in_row_groups_each_with_the_header(
        self, tmp_path: Path, settings: IngestSettings
    ) -> None:
        rows = [["id", "value"]] + [[str(i), f"v{i}"] for i in range(450)]
        doc = parse_file(docgen.make_csv(tmp_path / "big.csv", rows), settings)
        assert len(doc.elements) > 1 and all(e.text.startswith("id | value\n") for e in doc.elements)
        body = [line for e in doc.elements for line in e.text.split("\n")[1:]]
        assert body == [f"id: {i} | value: v{i}" for i in range(450)]

    @pytest.mark.parametrize("encoding", ["cp1252", "latin-1", "utf-8", "utf-16"])
    def test_text_encodings(self, tmp_path: Path, settings: IngestSettings, encoding: str) -> None:
        text = "Le café naïve coûte cher à Zürich, crème brûlée incluse."
        if encoding != "latin-1":
            text += " Prix: 5 €."
        doc = parse_file(docgen.make_txt(tmp_path / "t.txt", text, encoding=encoding), settings)
        assert doc.elements[0].text == text

    def test_short_cp1252_text(self, tmp_path: Path, settings: IngestSettings) -> None:
        doc = parse_file(docgen.make_txt(tmp_path / "s.txt", "naïve café €", encoding="cp1252"), settings)
        assert doc.elements[0].text == "naïve café €"

    def test_text_structure(self, tmp_path: Path, settings: IngestSettings) -> None:
        text = (
            "Service Guide\n=============\n\nThis guide is short.\nIt wraps over lines.\n\n"
            "Opening hours\n\n- Monday to Friday\n- Saturday mornings\n  by appointment\n\n"
            "Contact\n-------\n\nCall us.\n"
        )
        doc = parse_file(docgen.make_txt(tmp_path / "g.rst", text), settings)
        assert doc.doc_type == "txt" and doc.title == "Service Guide"
        assert titles(doc) == ["Service Guide", "Opening hours", "Contact"]
        assert find(doc, "This guide").text == "This guide is short. It wraps over lines."
        assert find(doc, "Saturday").text == "Saturday mornings by appointment"
        assert find(doc, "Saturday").kind == "ListItem" and find(doc, "Saturday").heading == "Opening hours"
        assert find(doc, "Call us").heading == "Contact"

    def test_sentence_is_not_a_heading(self, tmp_path: Path, settings: IngestSettings) -> None:
        doc = parse_file(docgen.make_txt(tmp_path / "b.txt", "Refunds are paid within 14 days.\n"), settings)
        assert [(e.kind, e.heading) for e in doc.elements] == [("NarrativeText", None)]
        assert doc.title is None


# Each QUESTIONS.md fact: (file, needle, page, heading) - the answer is where the table says it is.
SAMPLE_FACTS = [
    ("sweep_s3_manual.pdf", "5200 mAh", 1, "1. Specifications"),
    ("sweep_s3_manual.pdf", "The first full charge takes 4 hours", 2, "2. Setup"),
    ("sweep_s3_manual.pdf", "2.4 GHz", 2, "Connecting to Wi-Fi"),
    ("sweep_s3_manual.pdf", "Replace the HEPA filter every 3 months", 3, "3. Maintenance"),
    ("sweep_s3_manual.pdf", "Error E12 means a cliff sensor is dirty", 4, "4. Troubleshooting"),
    ("sweep_s3_manual.pdf", "lasts 24 months", 5, "5. Warranty and Service"),
    ("returns_policy.docx", "within 30 days of delivery", None, "Return window"),
    ("returns_policy.docx", "within 14 days", None, "Refunds"),
    ("returns_policy.docx", "restocking fee of 10%", None, "Condition of returned items"),
    ("faq.html", "up to 2 cm", None, "How high a threshold can the robot climb?"),
    ("firmware_release_notes.pptx", "Carpet Boost", 3, "Firmware 2.2 (June 2025)"),
    ("spare_parts.csv", "part_no: BAT-5200 | description: Replacement battery 5200 mAh | price_eur: 39.90", None, None),
    (
        "support_ticket_48213.eml",
        "within 3 business days",
        None,
        "Re: Ticket #48213 - Sweep S3 dock not charging",
    ),
    ("service_centres.txt", "flat fee of 49 € plus parts", None, "Express repair"),
    ("privacy_notice.md", "Frankfurt, Germany", None, "Where your data is stored"),
]


class TestSampleCorpus:
    @pytest.mark.parametrize(("name", "needle", "page", "heading"), SAMPLE_FACTS)
    def test_fact_is_where_questions_md_says(
        self, settings: IngestSettings, name: str, needle: str, page: int | None, heading: str | None
    ) -> None:
        el = find(parse_file(SAMPLES / name, settings), needle)
        assert (el.page, el.heading) == (page, heading)

    def test_every_sample_is_listed_and_parses_cleanly(self, settings: IngestSettings) -> None:
        listed = (SAMPLES.parent / "QUESTIONS.md").read_text(encoding="utf-8")
        files = sorted(p for p in SAMPLES.iterdir() if p.name != "QUESTIONS.md")
        assert {p.suffix for p in files} >= {".pdf", ".docx", ".pptx", ".html", ".md", ".eml", ".csv", ".txt"}
        for path in files:
            assert path.name in listed
            doc = parse_file(path, settings)
            assert doc.elements, path
            assert not doc.warnings or path.suffix == ".eml"
        manual = parse_file(SAMPLES / "sweep_s3_manual.pdf", settings)
        assert {e.page for e in manual.elements} == {1, 2, 3, 4, 5}
        assert not any(
            "Page " in e.text or (e.text == "Kestrel Sweep S3 User Manual" and e.page != 1)
            for e in manual.elements
        )  # the running footer is gone
