"""Bad input never crashes the caller: each case raises IngestError naming the file and saying what to do."""

from __future__ import annotations

import builtins
import zipfile
from pathlib import Path

import pytest

import ingest.parse
from ingest.parse import parse_file
from rag.errors import IngestError
from rag.settings import IngestSettings
from tests import docgen


@pytest.fixture
def settings() -> IngestSettings:
    return IngestSettings()


def rejected(path: Path, settings: IngestSettings, *needles: str) -> IngestError:
    """Parse ``path``, expect IngestError naming it whose reason contains every needle."""
    with pytest.raises(IngestError) as info:
        parse_file(path, settings)
    err = info.value
    assert err.path == str(path) and str(path) in str(err)
    for needle in needles:
        assert needle in err.reason, err.reason
    return err


class TestEmptyAndUnsupported:
    @pytest.mark.parametrize("suffix", [".pdf", ".docx", ".pptx", ".html", ".md", ".txt", ".csv", ".eml"])
    def test_zero_bytes(self, tmp_path: Path, settings: IngestSettings, suffix: str) -> None:
        path = tmp_path / f"empty{suffix}"
        path.write_bytes(b"")
        rejected(path, settings, "empty file (0 bytes)")

    @pytest.mark.parametrize("suffix", [".pdf", ".docx", ".txt", ".md"])
    def test_whitespace_only(self, tmp_path: Path, settings: IngestSettings, suffix: str) -> None:
        path = docgen.make_txt(tmp_path / f"blank{suffix}", " \n\t\r\n  \n")
        rejected(path, settings, "empty file (whitespace only)")

    def test_utf16_whitespace_only(self, tmp_path: Path, settings: IngestSettings) -> None:
        rejected(docgen.make_txt(tmp_path / "b.txt", "   \n\n ", encoding="utf-16"), settings, "empty")

    def test_document_without_text(self, tmp_path: Path, settings: IngestSettings) -> None:
        import docx

        path = tmp_path / "nothing.docx"
        docx.Document().save(str(path))
        rejected(path, settings, "no text found")

    def test_unsupported_type(self, tmp_path: Path, settings: IngestSettings) -> None:
        path = tmp_path / "photo.png"
        path.write_bytes(b"\x89PNG\r\n\x1a\n")
        rejected(path, settings, "unsupported file type '.png'", ".pdf")

    def test_missing_file(self, tmp_path: Path, settings: IngestSettings) -> None:
        rejected(tmp_path / "gone.txt", settings, "cannot read the file")


class TestSize:
    def test_too_large_is_refused_before_reading(
        self, tmp_path: Path, settings: IngestSettings, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path = docgen.make_big_file(tmp_path / "huge.pdf", mb=settings.max_file_mb + 1)

        def no_reading(*args: object, **kwargs: object) -> None:
            raise AssertionError("the file was opened")

        monkeypatch.setattr(builtins, "open", no_reading)
        monkeypatch.setattr(Path, "read_bytes", no_reading)
        rejected(path, settings, "file too large", "MB limit")

    def test_limit_comes_from_settings(self, tmp_path: Path) -> None:
        path = docgen.make_txt(tmp_path / "t.txt", "word " * 300_000)  # about 1.4 MB
        rejected(path, IngestSettings(max_file_mb=1), "file too large")
        assert parse_file(path, IngestSettings(max_file_mb=2)).elements


class TestPdf:
    def test_truncated(self, tmp_path: Path, settings: IngestSettings) -> None:
        rejected(
            docgen.make_truncated_pdf(tmp_path / "cut.pdf"), settings, "truncated PDF", "download it again"
        )

    def test_encrypted(self, tmp_path: Path, settings: IngestSettings) -> None:
        rejected(
            docgen.make_encrypted_pdf(tmp_path / "locked.pdf"),
            settings,
            "password-protected: decrypt it first",
        )

    def test_owner_password_only_is_readable(self, tmp_path: Path, settings: IngestSettings) -> None:
        from pypdf import PdfWriter

        plain = docgen.make_pdf(tmp_path / "p.pdf", [[("h1", "Open"), ("p", "Anyone may read this.")]])
        writer = PdfWriter(clone_from=str(plain))
        writer.encrypt(user_password="", owner_password="boss", algorithm="RC4-128")
        path = tmp_path / "restricted.pdf"
        with open(path, "wb") as fh:
            writer.write(fh)
        assert "Anyone may read this." in [e.text for e in parse_file(path, settings).elements]

    def test_scanned_without_ocr(self, tmp_path: Path) -> None:
        scan = docgen.make_scanned_pdf(tmp_path / "scan.pdf")
        rejected(scan, IngestSettings(ocr=False), "no text layer", "DOCQA_INGEST_OCR", "ocrmypdf")

    def test_one_scanned_page_without_ocr_is_a_warning(self, tmp_path: Path) -> None:
        settings = IngestSettings(ocr=False)
        from pypdf import PdfReader, PdfWriter

        text = docgen.make_pdf(tmp_path / "t.pdf", [[("p", "Typed page.")]])
        scan = docgen.make_scanned_pdf(tmp_path / "s.pdf", pages=1)
        writer = PdfWriter()
        for page in [*PdfReader(text).pages, *PdfReader(scan).pages]:
            writer.add_page(page)
        path = tmp_path / "mixed.pdf"
        with open(path, "wb") as fh:
            writer.write(fh)
        doc = parse_file(path, settings)
        assert [e.text for e in doc.elements] == ["Typed page."]
        assert doc.warnings == ["page 2 has no text layer (scanned?); OCR it to make it searchable"]

    def test_not_a_pdf(self, tmp_path: Path, settings: IngestSettings) -> None:
        rejected(docgen.make_txt(tmp_path / "fake.pdf", "just some words"), settings, "not a PDF")

    def test_corrupt_body(self, tmp_path: Path, settings: IngestSettings) -> None:
        path = docgen.make_txt(tmp_path / "bad.pdf", "%PDF-1.7\ngarbage garbage\n%%EOF\n")
        rejected(path, settings, "corrupt PDF")


class TestZipContainers:
    def test_zip_bomb_by_compression_ratio(self, tmp_path: Path, settings: IngestSettings) -> None:
        path = docgen.make_zip_bomb_docx(tmp_path / "bomb.docx", unpacked_mb=5)
        rejected(path, settings, "zip bomb suspected", "padding.bin", "100:1 limit")

    def test_zip_bomb_by_total_size(self, tmp_path: Path) -> None:
        path = docgen.make_zip_bomb_docx(tmp_path / "big.docx", unpacked_mb=3)
        settings = IngestSettings(max_unpacked_mb=2, max_compression_ratio=1e9)
        rejected(path, settings, "zip bomb suspected", "above the 2 MB limit")

    def test_bomb_is_refused_before_unpacking(
        self, tmp_path: Path, settings: IngestSettings, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import docx

        def no_unpacking(*args: object, **kwargs: object) -> None:
            raise AssertionError("python-docx was asked to open it")

        path = docgen.make_zip_bomb_docx(tmp_path / "bomb.docx")
        monkeypatch.setattr(docx, "Document", no_unpacking)
        rejected(path, settings, "zip bomb")

    def test_pptx_bomb(self, tmp_path: Path, settings: IngestSettings) -> None:
        path = docgen.make_pptx(tmp_path / "deck.pptx", [("Hello", ["World"])])
        with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("ppt/media/zeros.bin", b"\0" * (4 << 20))
        rejected(path, settings, "zip bomb suspected")

    def test_corrupt_zip(self, tmp_path: Path, settings: IngestSettings) -> None:
        rejected(docgen.make_corrupt_docx(tmp_path / "half.docx"), settings, "corrupt or truncated DOCX")

    def test_corrupt_pptx(self, tmp_path: Path, settings: IngestSettings) -> None:
        path = docgen.make_txt(tmp_path / "deck.pptx", "this is not a zip at all")
        rejected(path, settings, "corrupt or truncated PPTX")

    def test_wrong_container(self, tmp_path: Path, settings: IngestSettings) -> None:
        deck = docgen.make_pptx(tmp_path / "deck.pptx", [("Hello", ["World"])])
        renamed = deck.rename(tmp_path / "deck.docx")
        rejected(renamed, settings, "not a DOCX", "word/document.xml")

    def test_password_protected_office_file(self, tmp_path: Path, settings: IngestSettings) -> None:
        path = tmp_path / "secret.docx"
        path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 1024)  # an OLE compound file
        rejected(path, settings, "password-protected or legacy binary Office file")

    def test_damaged_xml_inside_is_wrapped(self, tmp_path: Path, settings: IngestSettings) -> None:
        good = docgen.make_docx(tmp_path / "good.docx", [("p", "Fine.")])
        path = tmp_path / "broken.docx"
        with zipfile.ZipFile(good) as src, zipfile.ZipFile(path, "w") as dst:
            for item in src.infolist():
                data = src.read(item)
                dst.writestr(
                    item, b"<w:document><unclosed>" if item.filename == "word/document.xml" else data
                )
        err = rejected(path, settings, "the DOCX could not be parsed", "re-save")
        assert err.__cause__ is not None  # the library's exception is kept for the log


class TestText:
    @pytest.mark.parametrize("suffix", [".txt", ".md", ".csv", ".html", ".eml"])
    def test_binary_with_a_text_suffix(self, tmp_path: Path, settings: IngestSettings, suffix: str) -> None:
        path = docgen.make_binary_with_txt_suffix(tmp_path / f"blob{suffix}")
        rejected(path, settings, "binary data")

    def test_binary_without_nul_bytes(self, tmp_path: Path, settings: IngestSettings) -> None:
        path = tmp_path / "noise.txt"
        path.write_bytes(bytes(b for b in range(1, 256) if b not in (9, 10, 13)) * 50)
        rejected(path, settings, "binary data")

    def test_eml_without_headers(self, tmp_path: Path, settings: IngestSettings) -> None:
        path = docgen.make_txt(tmp_path / "note.eml", "just a note\n\nwith two paragraphs\n")
        rejected(path, settings, "no e-mail headers found")


class TestErrorBoundary:
    def test_bugs_in_our_own_code_are_not_disguised(
        self, tmp_path: Path, settings: IngestSettings, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from ingest.parsers.common import one_line

        # A parser entry with the wrong signature: the TypeError arises in ingest code, so it propagates.
        monkeypatch.setitem(ingest.parse._PARSERS, "txt", one_line)
        with pytest.raises(TypeError):
            parse_file(docgen.make_txt(tmp_path / "a.txt", "hello"), settings)

    def test_library_failures_name_the_file(
        self, tmp_path: Path, settings: IngestSettings, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import markdown

        def broken(*args: object, **kwargs: object) -> str:
            raise ValueError("parser exploded")

        monkeypatch.setattr(markdown, "markdown", broken)
        rejected(docgen.make_txt(tmp_path / "a.md", "# Hi\n\ntext"), settings, "ValueError: parser exploded")
