"""Word (.docx) and PowerPoint (.pptx): zip containers, inspected before anything is unpacked.

python-docx and python-pptx directly, rather than unstructured's partitioners: those classify every
plain paragraph with a spaCy model downloaded on first use, which fails offline; the styles and
placeholders these libraries expose give better headings anyway.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import docx
import pptx
from docx.oxml.ns import qn
from docx.styles.style import BaseStyle
from docx.table import Table
from docx.text.paragraph import Paragraph
from pptx.enum.shapes import PP_PLACEHOLDER
from pptx.shapes.base import BaseShape
from pptx.shapes.group import GroupShape

from ingest.parsers.common import ElementBuilder, Unparseable, one_line, table_text
from ingest.parsers.heuristics import is_heading_shaped
from rag.settings import IngestSettings

_MIB = 1024 * 1024
# Below this uncompressed size a high ratio is harmless (a few KB of repeated XML compresses
# 500:1); the ratio rule is for members big enough to hurt.
_RATIO_CHECK_MIN_BYTES = _MIB
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_MAIN_PART = {"docx": "word/document.xml", "pptx": "ppt/presentation.xml"}


def check_zip_container(path: Path, kind: str, settings: IngestSettings) -> None:
    """Reject a corrupt zip, a wrong container or a zip bomb from the central directory alone.

    The declared sizes are trustworthy enough: zipfile never returns more than a member's declared
    size when the library later reads it, so a lying directory cannot unpack past these limits.
    """
    label = kind.upper()
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head == _OLE_MAGIC:
        raise Unparseable(
            f"this is a password-protected or legacy binary Office file, not a {label} zip container: "
            f"remove the password (or open it and save as .{kind}) first"
        )
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        raise Unparseable(
            f"corrupt or truncated {label}: its zip container cannot be read ({exc}); "
            f"open and re-save it, or copy it again"
        ) from exc
    total = sum(info.file_size for info in infos)
    if total > settings.max_unpacked_mb * _MIB:
        raise Unparseable(
            f"zip bomb suspected: it would unpack to {total / _MIB:.0f} MB, above the "
            f"{settings.max_unpacked_mb:g} MB limit (DOCQA_INGEST_MAX_UNPACKED_MB); not unpacked"
        )
    for info in infos:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size >= _RATIO_CHECK_MIN_BYTES and ratio > settings.max_compression_ratio:
            raise Unparseable(
                f"zip bomb suspected: member {info.filename!r} is compressed {ratio:.0f}:1, above the "
                f"{settings.max_compression_ratio:g}:1 limit (DOCQA_INGEST_MAX_COMPRESSION_RATIO); "
                "not unpacked"
            )
    if _MAIN_PART[kind] not in {info.filename for info in infos}:
        raise Unparseable(f"not a {label}: the zip has no {_MAIN_PART[kind]} (is the extension right?)")


# ---------------------------------------------------------------------------------------------- docx


def docx_elements(path: Path, builder: ElementBuilder) -> str | None:
    """Paragraphs and tables in body order; heading styles (or short all-bold lines) open sections."""
    document = docx.Document(str(path))
    for block in document.iter_inner_content():
        if isinstance(block, Paragraph):
            _docx_paragraph(block, builder)
        elif isinstance(block, Table):
            builder.add(table_text(_docx_rows(block)), "Table")
    return builder.first_title() or one_line(document.core_properties.title or "") or None


def _docx_paragraph(paragraph: Paragraph, builder: ElementBuilder) -> None:
    text = paragraph.text
    if not text.strip():
        return
    style = paragraph.style
    names = [s.name.lower() for s in _style_chain(style) if s.name]
    ppr = paragraph._p.pPr
    outline = ppr is not None and ppr.find(qn("w:outlineLvl")) is not None
    if any(n == "caption" for n in names):
        builder.add(text, "Caption")  # "Table 2: ..." above or below a table: it goes with the table
    elif any(n.startswith(("heading", "title")) for n in names) or outline:
        builder.title(text)
    elif any(n.startswith("list") for n in names) or (ppr is not None and ppr.numPr is not None):
        builder.add(text, "ListItem")
    elif _all_bold(paragraph) and is_heading_shaped(text) and text.strip()[0].isupper():
        builder.title(text)  # a "heading" typed as a bold line instead of a heading style
    else:
        builder.add(text)


def _style_chain(style: BaseStyle | None) -> Iterator[BaseStyle]:
    """The paragraph style and the styles it is based on (a custom style based on Heading 2 is a heading)."""
    seen = 0
    while style is not None and seen < 10:
        yield style
        style = getattr(style, "base_style", None)
        seen += 1


def _all_bold(paragraph: Paragraph) -> bool:
    runs = [r for r in paragraph.runs if r.text.strip()]
    style_bold = bool(paragraph.style is not None and paragraph.style.font.bold)
    return bool(runs) and all(r.bold or (r.bold is None and style_bold) for r in runs)


def _docx_rows(table: Table) -> list[list[str]]:
    """One cell per grid column: a merged cell's text stands in each column (and row) it covers, so
    every row's values stay under their own header names (``table_text`` writes a repeat once)."""
    return [[cell.text for cell in row.cells] for row in table.rows]


# ---------------------------------------------------------------------------------------------- pptx


def pptx_elements(path: Path, builder: ElementBuilder) -> str | None:
    """One page per slide (1-based, in presentation order); the slide title heads its elements."""
    presentation = pptx.Presentation(str(path))
    first_title = None
    for number, slide in enumerate(presentation.slides, start=1):
        title_shape = slide.shapes.title
        title = title_shape.text_frame.text if title_shape is not None and title_shape.has_text_frame else ""
        builder.heading = None  # an untitled slide does not inherit the previous slide's title
        builder.title(title.replace("\v", " "), page=number)
        if first_title is None and builder.heading:
            first_title = builder.heading
        for shape in _ordered(_flatten(slide.shapes)):
            if title_shape is not None and shape.shape_id == title_shape.shape_id:
                continue
            _pptx_shape(shape, builder, number)
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            builder.add(slide.notes_slide.notes_text_frame.text.replace("\v", "\n"), page=number)
    return first_title or one_line(presentation.core_properties.title or "") or None


def _flatten(shapes: Iterable[BaseShape]) -> Iterator[BaseShape]:
    for shape in shapes:
        if isinstance(shape, GroupShape):  # not shape_type: it raises on shapes python-pptx does not know
            yield from _flatten(shape.shapes)
        else:
            yield shape


def _ordered(shapes: Iterable[BaseShape]) -> list[BaseShape]:
    """Reading order: top to bottom, then left to right (shapes without a position keep their order)."""
    return sorted(shapes, key=lambda s: (getattr(s, "top", None) or 0, getattr(s, "left", None) or 0))


def _pptx_shape(shape: BaseShape, builder: ElementBuilder, page: int) -> None:
    if getattr(shape, "has_table", False):
        rows = [[cell.text for cell in row.cells] for row in shape.table.rows]
        builder.add(table_text(rows), "Table", page=page)
        return
    if not getattr(shape, "has_text_frame", False):
        return  # pictures, charts, media: no text layer to read
    bulleted = shape.is_placeholder and shape.placeholder_format.type in (
        PP_PLACEHOLDER.BODY,
        PP_PLACEHOLDER.OBJECT,
    )
    for paragraph in shape.text_frame.paragraphs:
        kind = "ListItem" if bulleted or paragraph.level > 0 else "NarrativeText"
        builder.add(paragraph.text.replace("\v", "\n"), kind, page=page)
