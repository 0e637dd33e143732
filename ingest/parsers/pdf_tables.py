"""Ruled tables in PDF pages: PDFium reads the drawn rules, pdfplumber's table finder turns them into
cells, PDFium reads each cell's text (borderless tables: ``pdf_aligned``).

pdfplumber recovers rows and columns from rules (wrapped cells included), but it gets the rules by
parsing the page with pdfminer, about 0.4 s a page on the Debian manuals, and its own text
extraction glues words on PDFs that encode no space characters. So the rules come from PDFium's path
objects (straight segments, rectangles as their sides), pdfplumber's edge merging and cell finding
run on those alone, and each cell's text is read by PDFium inside the cell's box: the same text as
the rest of the page. Pages with too few straight segments to draw a grid are not looked at.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field
from typing import Any

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from ingest.parsers.common import table_text

_MIN_SEGMENTS = 3  # of each direction: fewer horizontal or vertical rules cannot make a grid of 2x2
_TOLERANCE = 3.0  # points; pdfplumber's default snap/join/intersection tolerance
_MIN_EDGE = 3.0
_MAX_EMPTY_SHARE = 0.5  # a "table" with more empty cells than this is a layout box, not data
_COLUMN_SHIFT = 6.0  # points a column may move between two pages and still be the same table's


@dataclass
class Table:
    """One table on a page: its box in PDF coordinates (y grows upwards) and its rows of cells."""

    left: float
    bottom: float
    right: float
    top: float
    rows: list[list[str]]  # the first row is the header
    columns: list[float] = field(default_factory=list)  # each column's left edge: a continuation lines up
    ruled: bool = True  # found by its drawn rules (False: by the alignment of its text alone)
    continued: bool = False  # the rest of the previous page's table (its header row put back)

    @property
    def text(self) -> str:
        """Header row, then each row with its header names (``common.table_text``)."""
        return table_text(self.rows)

    def continues(self, previous: Table) -> bool:
        """Same columns as ``previous``: the same header row, or the same number of columns at the same
        distances from the first (books shift the whole page between left and right pages)."""
        if len(self.columns) != len(previous.columns) or len(self.columns) < 2:
            return False
        if _same_row(self.rows[0], previous.rows[0]):
            return True
        here = [c - self.columns[0] for c in self.columns]
        there = [c - previous.columns[0] for c in previous.columns]
        return all(abs(a - b) <= _COLUMN_SHIFT for a, b in zip(here, there, strict=True))

    def join(self, previous: Table) -> None:
        """Become the continuation of ``previous``: its header row first, unless this page repeats it."""
        header = previous.rows[0]
        if not _same_row(self.rows[0], header):
            self.rows = [header, *self.rows]
        self.continued = True

    @property
    def width(self) -> int:
        """Columns: the longest row's cells."""
        return max(len(row) for row in self.rows)

    def overlaps(self, other: Table) -> bool:
        return not (
            self.right < other.left or other.right < self.left or self.top < other.bottom or other.top < self.bottom
        )

    def holds(self, x: float | None, y: float | None) -> bool:
        if x is None or y is None:
            return False
        return self.left - 2 <= x <= self.right + 2 and self.bottom - 2 <= y <= self.top + 2


def _same_row(a: list[str], b: list[str]) -> bool:
    return [c.casefold() for c in a] == [c.casefold() for c in b]


def find_tables(page: pdfium.PdfPage, textpage: pdfium.PdfTextPage) -> list[Table]:
    height = page.get_height()
    edges = _edges(page, height)
    if sum(e["orientation"] == "h" for e in edges) < _MIN_SEGMENTS:
        return []
    if sum(e["orientation"] == "v" for e in edges) < _MIN_SEGMENTS:
        return []
    from pdfplumber import table as finder  # imported late: most pages never get here

    edges = finder.merge_edges(edges, _TOLERANCE, _TOLERANCE, _TOLERANCE, _TOLERANCE)
    edges = [e for e in edges if (e["x1"] - e["x0"] if e["orientation"] == "h" else e["height"]) >= _MIN_EDGE]
    cells = finder.intersections_to_cells(finder.edges_to_intersections(edges, _TOLERANCE, _TOLERANCE))
    tables = [_read(finder.Table(None, group), textpage, height) for group in finder.cells_to_tables(cells)]
    return [t for t in tables if t is not None]


def _edges(page: pdfium.PdfPage, height: float) -> list[dict[str, Any]]:
    """Horizontal and vertical segments of the page's top-level paths, as pdfplumber edges."""
    edges = []
    x, y = ctypes.c_float(), ctypes.c_float()
    for obj in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_PATH], max_depth=1):
        matrix = obj.get_matrix()
        points: list[tuple[float, float]] = []
        start: tuple[float, float] | None = None
        for i in range(pdfium_c.FPDFPath_CountSegments(obj.raw)):
            segment = pdfium_c.FPDFPath_GetPathSegment(obj.raw, i)
            if not pdfium_c.FPDFPathSegment_GetPoint(segment, x, y):
                continue
            point = matrix.on_point(x.value, y.value)
            kind = pdfium_c.FPDFPathSegment_GetType(segment)
            if kind == pdfium_c.FPDF_SEGMENT_MOVETO:
                start = point
            elif kind == pdfium_c.FPDF_SEGMENT_LINETO and points:
                edges.extend(_edge(points[-1], point, height))
            if pdfium_c.FPDFPathSegment_GetClose(segment) and start is not None:
                edges.extend(_edge(point, start, height))
            points.append(point)
    return edges


def _edge(a: tuple[float, float], b: tuple[float, float], height: float) -> list[dict[str, Any]]:
    (x0, y0), (x1, y1) = sorted([a, b])
    if abs(y1 - y0) < 1.0 and abs(x1 - x0) >= _MIN_EDGE:
        top = height - (y0 + y1) / 2
        return [{"x0": x0, "x1": x1, "top": top, "bottom": top, "width": x1 - x0, "height": 0, "orientation": "h"}]
    if abs(x1 - x0) < 1.0 and abs(y1 - y0) >= _MIN_EDGE:
        low, high = sorted([y0, y1])
        xm = (x0 + x1) / 2
        return [
            {
                "x0": xm,
                "x1": xm,
                "top": height - high,
                "bottom": height - low,
                "width": 0,
                "height": high - low,
                "orientation": "v",
            }
        ]
    return []


def _read(table: Any, textpage: pdfium.PdfTextPage, height: float) -> Table | None:
    rows: list[list[str]] = []
    cells = 0
    empty = 0
    for row in table.rows:
        texts = []
        for cell in row.cells:
            if cell is None:  # covered by a merged cell
                continue
            x0, top, x1, bottom = cell
            text = textpage.get_text_bounded(left=x0, bottom=height - bottom, right=x1, top=height - top)
            text = " ".join(text.split())
            cells += 1
            empty += not text
            texts.append(text)
        if any(texts):
            rows.append(texts)
    if len(rows) < 2 or max(len(r) for r in rows) < 2 or empty > _MAX_EMPTY_SHARE * cells:
        return None  # a framed note or code listing, not a table
    x0, top, x1, bottom = table.bbox
    # The grid's column edges, merged cells included.
    columns = sorted({round(cell[0], 1) for row in table.rows for cell in row.cells if cell is not None})
    return Table(x0, height - bottom, x1, height - top, rows, columns)
