"""PDF text, page by page, with pypdfium2 (unstructured's PDF path needs torchvision and OCR models).

Headings are inferred from typography: a short line set clearly larger than the body text, or
entirely in a bold face and standing apart, opens a section. When a document has no typographic
contrast at all, short Title Case lines standing apart are taken instead. Lines are joined back
into paragraphs by their vertical spacing. Around that:
- running headers, footers, page numbers and contents pages are dropped (``pdf_layout``);
- ruled tables (``pdf_tables``) and borderless ones, found by the alignment of their cells
  (``pdf_aligned``), become one Table element each; a table whose rows go on at the top of the next
  page in the same columns stays one table (its header row put back there), and a "Table 3.1: ..."
  line is its caption;
- runs of lines set in a fixed-pitch font are code, kept with their line breaks and indentation;
- raised, smaller digits after a word are footnote markers, written ``word[^3]`` so they stay apart;
- pages without a text layer are OCR'd (``ocr``), when enabled;
- the printed page number of each page (its /PageLabels entry) is kept beside the physical one.
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
from ingest.parsers.ocr import OcrLine, OcrTimeout, OcrUnavailable, ocr_page
from ingest.parsers.pdf_aligned import find_aligned_tables
from ingest.parsers.pdf_layout import PAGE_NUMBER, find_furniture
from ingest.parsers.pdf_tables import Table, find_tables
from ingest.parsers.plain import unwrap
from rag.settings import IngestSettings

_PASSWORD_ERROR = 4  # FPDF_ERR_PASSWORD
_HEADING_SIZE_RATIO = 1.15  # a line this much larger than the body text is a heading candidate
_PARAGRAPH_GAP = 1.45  # baseline distance, in font sizes, above which a new paragraph starts
_WRAP_GAP = 1.3  # a heading's second line sits at about 1.2 font sizes; a new heading further away
_SIZE_SAMPLES = 8  # characters per line whose font size is read
_SOFT_HYPHEN = re.compile("\ufffe(?=\\w)")
_BOLD_NAME = re.compile(r"bold|black|heavy|semibold|demi", re.I)
_MONO_NAME = re.compile(r"mono|courier|consol|typewriter|code|fixed", re.I)
_FIXED_PITCH = 1  # FPDF_FONT_FIXEDPITCH in FPDFText_GetFontInfo's flags
_SUPERSCRIPT_SIZE = 0.85  # a footnote marker is set at most this size of its line...
_SUPERSCRIPT_RISE = 0.2  # ...and raised at least this many line sizes above the baseline
_CODE_GAP = 2.2  # code lines further apart than this many font sizes are two blocks
_CHAR_WIDTH = 0.6  # a fixed-pitch glyph's advance, in font sizes: turns x offsets into indentation
_CAPTION = re.compile(r"^(?:Table|Tab\.)\s+[\dA-Z][\w.-]*\s*[:.]\s+\S", re.I)
_MAX_CAPTION_WORDS = 30


@dataclass
class _Line:
    text: str
    size: float
    bold: bool
    baseline: float | None  # y of the first visible character's origin (PDF y grows upwards)
    x: float | None  # x of that origin
    page: int
    mono: bool = False  # every sampled character is in a fixed-pitch font: a line of code
    table: Table | None = None  # this "line" stands for a whole table
    start: int = -1  # index of the line's first character in the page's text (-1: OCR)
    length: int = 0


def pdf_elements(path: Path, builder: ElementBuilder, warnings: list[str], settings: IngestSettings) -> str | None:
    """Fill ``builder`` from the PDF at ``path``; return the document title, if one is found.

    ``builder.stats`` gets the figures the ingest report shows; ``builder.page_labels`` the printed
    page numbers that differ from the physical ones.
    """
    _check_bytes(path)
    try:
        document = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        raise _open_error(path, exc) from exc
    stats = builder.stats
    try:
        pages = [_page_lines(document, index, warnings, settings) for index in range(len(document))]
        stats["pages"] = len(pages)
        blank = [
            n
            for n, lines in enumerate(pages, start=1)
            if all(_bare_number(x) for x in lines) and _has_images(document, n - 1)
        ]
        ocr_done = _ocr(document, pages, blank, warnings, settings) if blank and settings.ocr else set()
        stats["ocr_pages"] = len(ocr_done)
        labels = _pdf_labels(document)
        meta_title = one_line(document.get_metadata_dict().get("Title", "") or "")
    finally:
        document.close()
    if not pages:
        raise Unparseable("the PDF has no pages: re-export it")
    # Running lines go first: a scan whose only text is a stamped page number still has no text layer.
    body = _body_size(pages)
    furniture = find_furniture(pages, body, labels)
    stats["running_lines_dropped"] = len(furniture.running)
    stats["contents_pages"] = len(furniture.contents_pages)
    builder.page_labels.update(furniture.labels)
    kept = [
        [] if number in furniture.contents_pages else [line for line in lines if id(line) not in furniture.running]
        for number, lines in enumerate(pages, start=1)
    ]
    if not any(kept) and not furniture.contents_pages:
        hint = (
            "OCR found no readable text on its pages either"
            if settings.ocr
            else "OCR is off (DOCQA_INGEST_OCR=false); turn it on, or run OCR (e.g. `ocrmypdf in.pdf out.pdf`) first"
        )
        raise Unparseable(f"no text layer — scanned? {hint}, then ingest the result")
    tables = _join_continued(kept)
    stats["tables"] = len(tables)
    stats["tables_ruled"] = sum(t.ruled for t in tables)
    stats["tables_borderless"] = len(tables) - stats["tables_ruled"]
    for number in blank:
        if number not in ocr_done:
            warnings.append(f"page {number} has no text layer (scanned?); OCR it to make it searchable")
    _emit(kept, builder)
    return builder.first_title() or meta_title or None


def _bare_number(line: _Line) -> bool:
    return line.table is None and PAGE_NUMBER.match(line.text) is not None


def _has_images(document: pdfium.PdfDocument, index: int) -> bool:
    """A page with no text is scanned only if it shows an image (an empty page is just empty)."""
    page = document[index]
    try:
        return next(page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=3), None) is not None
    finally:
        page.close()


def _pdf_labels(document: pdfium.PdfDocument) -> dict[int, str]:
    """Printed page numbers from the PDF's /PageLabels (empty when it has none)."""
    labels = {}
    for index in range(len(document)):
        label = document.get_page_label(index)
        if label:
            labels[index + 1] = label
    return labels


def _ocr(
    document: pdfium.PdfDocument,
    pages: list[list[_Line]],
    blank: list[int],
    warnings: list[str],
    settings: IngestSettings,
) -> set[int]:
    """OCR the pages in ``blank`` in place; returns the pages that got text."""
    done: set[int] = set()
    for number in blank:
        page = document[number - 1]
        try:
            found = ocr_page(page, settings.ocr_dpi, settings.ocr_page_timeout_s)
        except OcrTimeout:
            rest = [n for n in blank if n > number]
            warnings.append(
                f"page {number}: OCR took longer than {settings.ocr_page_timeout_s:g} s; it and "
                f"{len(rest)} later page(s) without text were not OCR'd (raise DOCQA_INGEST_OCR_PAGE_TIMEOUT_S)"
            )
            return done
        except OcrUnavailable as exc:
            warnings.append(f"pages without a text layer were not OCR'd: {exc.reason}")
            return done
        finally:
            page.close()
        if found:
            pages[number - 1] = [_ocr_line(line, number) for line in found]
            done.add(number)
    return done


def _ocr_line(line: OcrLine, page: int) -> _Line:
    # OCR knows text height, not font size: cap height is about 0.7 of the size.
    return _Line(line.text, round(line.height / 0.7 * 2) / 2, False, line.baseline, line.left, page)


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
            "truncated PDF (its %%EOF end marker is missing): the file is incomplete — copy or download it again"
        )
    return Unparseable(f"corrupt PDF ({exc}): re-export it, or try repairing it with `qpdf in.pdf out.pdf`")


def _join_continued(pages: list[list[_Line]]) -> list[Table]:
    """Tables, a page's first one joined to the previous page's last when its columns line up there;
    returns each table once (continuations not counted)."""
    tables = []
    previous: Table | None = None
    for lines in pages:
        first = lines[0].table if lines else None
        if first is not None and previous is not None and first.continues(previous):
            first.join(previous)
            lines[0].text = first.text
        tables.extend(line.table for line in lines if line.table is not None and not line.table.continued)
        previous = lines[-1].table if lines else None
    return tables


def _page_lines(document: pdfium.PdfDocument, index: int, warnings: list[str], settings: IngestSettings) -> list[_Line]:
    """The visible text lines of one page, with font size, boldness and baseline; each table found
    on it replaces its lines, as one entry where its first line was."""
    try:
        page = document[index]
        textpage = page.get_textpage()
    except pdfium.PdfiumError as exc:
        warnings.append(f"page {index + 1} could not be read ({exc}); skipped")
        return []
    try:
        lines = _text_lines(textpage, index)
        if not lines:
            return lines
        ruled = find_tables(page, textpage) if settings.pdf_tables else []
        aligned = find_aligned_tables(lines, textpage) if settings.pdf_borderless_tables else []
        kept = []
        for table, members in aligned:
            # A grid drawn around some columns only (or a row of boxes) is read whole by alignment;
            # a complete grid is read by its rules, which also know its wrapped cells.
            overlapping = [r for r in ruled if r.overlaps(table)]
            if overlapping and all(r.width >= table.width for r in overlapping):
                continue
            ruled = [r for r in ruled if r not in overlapping]
            kept.append((table, members))
        lines = _place_aligned(lines, kept, index + 1)
        return _place_tables(lines, ruled, index + 1)
    finally:
        textpage.close()
        page.close()


def _place_tables(lines: list[_Line], tables: list[Table], page: int) -> list[_Line]:
    for table in tables:
        inside = {i for i, line in enumerate(lines) if line.table is None and table.holds(line.x, line.baseline)}
        if not inside:
            continue  # a grid with no text of this page in it
        first = min(inside)
        placeholder = _Line(table.text, lines[first].size, False, table.top, table.left, page, table=table)
        lines = [placeholder if i == first else line for i, line in enumerate(lines) if i == first or i not in inside]
    return lines


def _place_aligned(lines: list[_Line], found: list[tuple[Table, list[int]]], page: int) -> list[_Line]:
    """Each table replaces the lines it was read from, as one entry where its first line was."""
    replaced: dict[int, _Line] = {}
    dropped: set[int] = set()
    for table, members in found:
        head = lines[members[0]]
        replaced[members[0]] = _Line(table.text, head.size, False, table.top, table.left, page, table=table)
        dropped.update(members[1:])
    return [replaced.get(i, line) for i, line in enumerate(lines) if i not in dropped]


def _text_lines(textpage: pdfium.PdfTextPage, index: int) -> list[_Line]:
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
    samples = [_font(textpage, i) for i in (visible[0], visible[len(visible) // 2], visible[-1])]
    bold = all(b for b, _ in samples)
    mono = all(m for _, m in samples)
    x, y = ctypes.c_double(), ctypes.c_double()
    found = pdfium_c.FPDFText_GetCharOrigin(textpage.raw, visible[0], ctypes.byref(x), ctypes.byref(y))
    text = raw if mono else _mark_footnotes(textpage, raw, start, size, y.value if found else None)
    return _Line(
        text.strip(),
        round(size * 2) / 2,
        bold,
        y.value if found else None,
        x.value if found else None,
        page,
        mono,
        start=start,
        length=len(raw),
    )


def _mark_footnotes(textpage: pdfium.PdfTextPage, raw: str, start: int, size: float, baseline: float | None) -> str:
    """``word3`` with a raised, smaller 3 becomes ``word[^3]``: the marker no longer glues to the word."""
    if baseline is None or not any(ch.isdigit() for ch in raw):
        return raw
    x, y = ctypes.c_double(), ctypes.c_double()
    raised: set[int] = set()
    for i, ch in enumerate(raw):
        if not ch.isdigit() or i == 0 or (raw[i - 1].isspace() and i - 1 not in raised):
            continue  # a number standing free is not glued to anything
        index = start + i
        if pdfium_c.FPDFText_GetFontSize(textpage.raw, index) > _SUPERSCRIPT_SIZE * size:
            continue
        if not pdfium_c.FPDFText_GetCharOrigin(textpage.raw, index, ctypes.byref(x), ctypes.byref(y)):
            continue
        if y.value - baseline >= _SUPERSCRIPT_RISE * size:
            raised.add(i)
    if not raised:
        return raw
    out = []
    for i, ch in enumerate(raw):
        if i in raised and (i - 1) not in raised:
            out.append("[^")
        out.append(ch)
        if i in raised and (i + 1) not in raised:
            out.append("]")
    return "".join(out)


def _font(textpage: pdfium.PdfTextPage, index: int) -> tuple[bool, bool]:
    """(bold, fixed-pitch) for the character at ``index``."""
    buffer = ctypes.create_string_buffer(128)
    flags = ctypes.c_int()
    pdfium_c.FPDFText_GetFontInfo(textpage.raw, index, buffer, len(buffer), ctypes.byref(flags))
    name = buffer.value.decode("latin-1")
    bold = pdfium_c.FPDFText_GetFontWeight(textpage.raw, index) >= 600 or bool(_BOLD_NAME.search(name))
    return bold, bool(flags.value & _FIXED_PITCH) or bool(_MONO_NAME.search(name))


def _body_size(pages: list[list[_Line]]) -> float:
    weight: Counter[float] = Counter()
    for lines in pages:
        for line in lines:
            if line.table is None:
                weight[line.size] += len(line.text)
    return weight.most_common(1)[0][0] if weight else 0.0


def _emit(pages: list[list[_Line]], builder: ElementBuilder) -> None:
    body = _body_size(pages)
    contrast = any(line.size >= body * _HEADING_SIZE_RATIO or line.bold for lines in pages for line in lines)
    for lines in pages:
        paragraph: list[_Line] = []
        code: list[_Line] = []
        for i, line in enumerate(lines):
            prev = lines[i - 1] if i else None
            nxt = lines[i + 1] if i + 1 < len(lines) else None
            if code and not (line.mono and _same_code_block(code[-1], line)):
                _flush_code(code, builder)
            if line.table is not None:
                _flush(paragraph, builder)
                builder.add(line.table.text, "Table", page=line.page)
                continue
            if _is_caption(line, prev, nxt):
                _flush(paragraph, builder)
                builder.add(line.text, "Caption", page=line.page)
                continue
            if line.mono:
                _flush(paragraph, builder)
                code.append(line)
                continue
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
                or prev.mono
                or prev.table is not None
                or _new_paragraph(prev, line)
                or is_list_item(line.text)
                or not _aligned(paragraph, line)
            ):
                _flush(paragraph, builder)
            paragraph.append(line)
        _flush(paragraph, builder)
        _flush_code(code, builder)


def _is_caption(line: _Line, prev: _Line | None, nxt: _Line | None) -> bool:
    """ "Table 9.9: List of nice values ..." right above or below a table."""
    beside = (prev is not None and prev.table is not None) or (nxt is not None and nxt.table is not None)
    return beside and len(line.text.split()) <= _MAX_CAPTION_WORDS and _CAPTION.match(line.text) is not None


def _same_code_block(prev: _Line, line: _Line) -> bool:
    gap = _gap(prev, line)
    return gap is not None and 0 < gap <= _CODE_GAP * max(prev.size, line.size)


def _flush_code(code: list[_Line], builder: ElementBuilder) -> None:
    """Emit code lines as one block, line breaks kept and indentation rebuilt from the x offsets."""
    if code:
        left = min(line.x for line in code if line.x is not None) if any(line.x is not None for line in code) else 0.0
        rows = []
        for line in code:
            indent = round((line.x - left) / (_CHAR_WIDTH * line.size)) if line.x is not None and line.size else 0
            rows.append(" " * max(0, indent) + line.text)
        builder.add("\n".join(rows), "CodeSnippet", page=code[0].page, keep_layout=True)
        code.clear()


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
    if line.mono or not is_heading_shaped(line.text):
        return False
    if is_list_item(line.text) and not is_title_case_heading(line.text):
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
