"""PDF text, page by page, with pypdfium2 (unstructured's PDF path needs torchvision and OCR models).

Headings are inferred from typography: a short line set clearly larger than the body text, or
entirely in a bold face and standing apart, opens a section. When a document has no typographic
contrast at all, short Title Case lines standing apart are taken instead. Lines are joined back
into paragraphs by their vertical spacing; running headers, footers and page numbers are dropped.
"""

from __future__ import annotations

import ctypes
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from ingest.parsers.common import ElementBuilder, Unparseable, one_line
from ingest.parsers.heuristics import (
    is_heading_shaped,
    is_list_item,
    is_title_case_heading,
    strip_bullet,
)
from ingest.parsers.plain import unwrap

_PASSWORD_ERROR = 4  # FPDF_ERR_PASSWORD
_HEADING_SIZE_RATIO = 1.15  # a line this much larger than the body text is a heading candidate
_PARAGRAPH_GAP = 1.45  # baseline distance, in font sizes, above which a new paragraph starts
_WRAP_GAP = 1.3  # a heading's second line sits at about 1.2 font sizes; a new heading further away
_SIZE_SAMPLES = 8  # characters per line whose font size is read
_PAGE_NUMBER = re.compile(r"^(?:page\s*)?\d{1,4}(?:\s*(?:of|/)\s*\d{1,4})?$|^[-–—]\s*\d{1,4}\s*[-–—]$", re.I)
_DIGITS = re.compile(r"\d+")
_SOFT_HYPHEN = re.compile("\ufffe(?=\\w)")
_BOLD_NAME = re.compile(r"bold|black|heavy|semibold|demi", re.I)


@dataclass
class _Line:
    text: str
    size: float
    bold: bool
    baseline: float | None  # y of the first visible character's origin (PDF y grows upwards)
    x: float | None  # x of that origin
    page: int


def pdf_elements(path: Path, builder: ElementBuilder, warnings: list[str]) -> str | None:
    """Fill ``builder`` from the PDF at ``path``; return the document title, if one is found."""
    _check_bytes(path)
    try:
        document = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        raise _open_error(path, exc) from exc
    try:
        pages = [_page_lines(document, index, warnings) for index in range(len(document))]
        meta_title = one_line(document.get_metadata_dict().get("Title", "") or "")
    finally:
        document.close()
    if not pages:
        raise Unparseable("the PDF has no pages: re-export it")
    # Running lines go first: a scan whose only text is a stamped page number still has no text layer.
    pages = _drop_running_lines(pages)
    if not any(pages):
        raise Unparseable(
            "no text layer — scanned? run OCR (e.g. `ocrmypdf in.pdf out.pdf`) first, then ingest the result"
        )
    for number, lines in enumerate(pages, start=1):
        if not lines:
            warnings.append(f"page {number} has no text layer (scanned?); OCR it to make it searchable")
    _emit(pages, builder)
    return builder.first_title() or meta_title or None


def _check_bytes(path: Path) -> None:
    with open(path, "rb") as fh:
        head = fh.read(1024)
    if b"%PDF-" not in head:
        raise Unparseable("not a PDF (no %PDF- header): check the file extension, or re-export it as PDF")


def _open_error(path: Path, exc: pdfium.PdfiumError) -> Unparseable:
    if exc.err_code == _PASSWORD_ERROR:
        return Unparseable(
            "password-protected: decrypt it first (e.g. `qpdf --decrypt --password=PASSWORD in.pdf out.pdf`)"
        )
    size = path.stat().st_size
    with open(path, "rb") as fh:
        fh.seek(max(0, size - 2048))
        tail = fh.read()
    if b"%%EOF" not in tail:
        return Unparseable(
            "truncated PDF (its %%EOF end marker is missing): the file is incomplete — "
            "copy or download it again"
        )
    return Unparseable(f"corrupt PDF ({exc}): re-export it, or try repairing it with `qpdf in.pdf out.pdf`")


def _page_lines(document: pdfium.PdfDocument, index: int, warnings: list[str]) -> list[_Line]:
    """The visible text lines of one page, with font size, boldness and baseline."""
    try:
        page = document[index]
        textpage = page.get_textpage()
    except pdfium.PdfiumError as exc:
        warnings.append(f"page {index + 1} could not be read ({exc}); skipped")
        return []
    try:
        count = textpage.count_chars()
        text = textpage.get_text_range() if count else ""
        if len(text) != count:
            # Index arithmetic below needs one character per text-page index; this is the rare
            # case where it does not hold (characters outside the BMP): read characters one by one.
            text = _char_by_char(textpage, count)
        lines = []
        start = 0
        for raw in re.split(r"(\r\n|\r|\n)", text):
            if raw in ("\r\n", "\r", "\n"):
                start += len(raw)
                continue
            if raw.strip():
                lines.append(_measure(textpage, raw, start, index + 1))
                # PDFium marks a hyphen it judges to be end-of-line hyphenation as U+FFFE, and often
                # joins the word's two halves itself: drop the mark inside a word, keep a real hyphen.
                lines[-1].text = _SOFT_HYPHEN.sub("", lines[-1].text).replace("\ufffe", "-")
            start += len(raw)
        return lines
    finally:
        textpage.close()
        page.close()


def _char_by_char(textpage: pdfium.PdfTextPage, count: int) -> str:
    """The page text with exactly one character per index; a surrogate pair becomes the character
    plus a zero-width space (which clean_text drops later)."""
    chars = [chr(pdfium_c.FPDFText_GetUnicode(textpage.raw, i) or 32) for i in range(count)]
    for i in range(count - 1):
        if "\ud800" <= chars[i] <= "\udbff" and "\udc00" <= chars[i + 1] <= "\udfff":
            pair = (chars[i] + chars[i + 1]).encode("utf-16-le", "surrogatepass")
            chars[i], chars[i + 1] = pair.decode("utf-16-le"), "\u200b"
    return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in chars)


def _measure(textpage: pdfium.PdfTextPage, raw: str, start: int, page: int) -> _Line:
    visible = [start + i for i, ch in enumerate(raw) if not ch.isspace()]
    step = max(1, len(visible) // _SIZE_SAMPLES)
    sizes = sorted(pdfium_c.FPDFText_GetFontSize(textpage.raw, i) for i in visible[::step])
    size = sizes[len(sizes) // 2]
    bold = all(_is_bold(textpage, i) for i in (visible[0], visible[len(visible) // 2], visible[-1]))
    x, y = ctypes.c_double(), ctypes.c_double()
    found = pdfium_c.FPDFText_GetCharOrigin(textpage.raw, visible[0], ctypes.byref(x), ctypes.byref(y))
    return _Line(
        raw.strip(), round(size * 2) / 2, bold, y.value if found else None, x.value if found else None, page
    )


def _is_bold(textpage: pdfium.PdfTextPage, index: int) -> bool:
    if pdfium_c.FPDFText_GetFontWeight(textpage.raw, index) >= 600:
        return True
    buffer = ctypes.create_string_buffer(128)
    flags = ctypes.c_int()
    pdfium_c.FPDFText_GetFontInfo(textpage.raw, index, buffer, len(buffer), ctypes.byref(flags))
    return bool(_BOLD_NAME.search(buffer.value.decode("latin-1")))


def _drop_running_lines(pages: list[list[_Line]]) -> list[list[_Line]]:
    """Remove page numbers, and headers/footers repeated at the top or bottom of most pages.

    A running line is never larger than the body text (so "Article 1", "Article 2"... opening each page
    stay). It repeats exactly, or, when set smaller than the body, with only its numbers changing
    ("Manual v2 - printed 2025-03-01 - 3"); body-size lines differing in numbers are content.
    """
    body = _body_size(pages)

    def key(line: _Line) -> tuple[str, float] | None:
        if line.size > body:
            return None
        return (_DIGITS.sub("#", line.text) if line.size < body else line.text), line.size

    repeated: set[tuple[str, float]] = set()
    if len(pages) >= 3:
        edges: Counter[tuple[str, float]] = Counter()
        for lines in pages:
            edges.update({k for line in lines[:2] + lines[-2:] if (k := key(line)) is not None})
        repeated = {k for k, n in edges.items() if n >= max(3, 0.6 * len(pages))}
    kept = []
    for lines in pages:
        edge_ids = {id(line) for line in lines[:2] + lines[-2:]}
        kept.append(
            [
                line
                for line in lines
                if not _PAGE_NUMBER.match(line.text) and not (id(line) in edge_ids and key(line) in repeated)
            ]
        )
    return kept


def _body_size(pages: list[list[_Line]]) -> float:
    weight: Counter[float] = Counter()
    for lines in pages:
        for line in lines:
            weight[line.size] += len(line.text)
    return weight.most_common(1)[0][0] if weight else 0.0


def _emit(pages: list[list[_Line]], builder: ElementBuilder) -> None:
    body = _body_size(pages)
    contrast = any(line.size >= body * _HEADING_SIZE_RATIO or line.bold for lines in pages for line in lines)
    for lines in pages:
        paragraph: list[_Line] = []
        for i, line in enumerate(lines):
            prev = lines[i - 1] if i else None
            nxt = lines[i + 1] if i + 1 < len(lines) else None
            if _is_heading(line, prev, nxt, body, contrast):
                _flush(paragraph, builder)
                last = builder.elements[-1] if builder.elements else None
                if last is not None and last.kind == "Title" and _continues(last.page, prev, line):
                    builder.elements.pop()  # a heading wrapped over two lines: one title
                    builder.title(f"{last.text} {line.text}", page=last.page)
                else:
                    builder.title(line.text, page=line.page)
                continue
            if (
                prev is None
                or _new_paragraph(prev, line)
                or is_list_item(line.text)
                or not _aligned(paragraph, line)
            ):
                _flush(paragraph, builder)
            paragraph.append(line)
        _flush(paragraph, builder)


def _flush(paragraph: list[_Line], builder: ElementBuilder) -> None:
    """Emit the gathered lines as one paragraph (a list item when its first line has a bullet)."""
    if paragraph:
        text = unwrap([line.text for line in paragraph])
        if is_list_item(paragraph[0].text):
            builder.add(strip_bullet(text), "ListItem", page=paragraph[0].page)
        else:
            builder.add(text, page=paragraph[0].page)
        paragraph.clear()


def _gap(a: _Line | None, b: _Line | None) -> float | None:
    if a is None or b is None or a.baseline is None or b.baseline is None:
        return None
    return a.baseline - b.baseline


def _new_paragraph(prev: _Line, line: _Line) -> bool:
    gap = _gap(prev, line)
    if gap is None or gap <= 0:
        return True  # a column break or text placed out of order: do not glue it on
    return gap > _PARAGRAPH_GAP * max(prev.size, line.size) or abs(prev.size - line.size) > 0.5


def _aligned(paragraph: list[_Line], line: _Line) -> bool:
    """Does ``line`` continue ``paragraph`` horizontally? Body lines share a left edge; a list item's
    wrapped lines sit right of its bullet. A table or a block further left starts something new."""
    if not paragraph or line.x is None or paragraph[-1].x is None:
        return True
    tolerance = line.size
    if len(paragraph) == 1 and is_list_item(paragraph[0].text):
        indent = line.x - paragraph[0].x  # type: ignore[operator]
        return -tolerance / 2 < indent <= 4 * tolerance  # hanging indent under the bullet text
    return abs(line.x - paragraph[-1].x) <= tolerance


def _stands_apart(line: _Line, prev: _Line | None, nxt: _Line | None) -> bool:
    before = prev is None or _new_paragraph(prev, line)
    after = nxt is None or _new_paragraph(line, nxt)
    return before and after


def _is_heading(line: _Line, prev: _Line | None, nxt: _Line | None, body: float, contrast: bool) -> bool:
    if not is_heading_shaped(line.text) or (is_list_item(line.text) and not is_title_case_heading(line.text)):
        return False
    if line.size >= body * _HEADING_SIZE_RATIO:
        return True
    if contrast:
        return line.bold and line.size >= body and _stands_apart(line, prev, nxt)
    return _stands_apart(line, prev, nxt) and is_title_case_heading(line.text)


def _continues(title_page: int | None, prev: _Line | None, line: _Line) -> bool:
    """Is ``line`` the second line of the heading just emitted (same page, same size, no gap)?"""
    if prev is None or title_page != line.page or prev.size != line.size:
        return False
    gap = _gap(prev, line)
    return gap is not None and 0 < gap <= _WRAP_GAP * line.size
