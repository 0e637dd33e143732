"""Borderless tables in PDF pages: rows of cells whose columns line up, with no rules drawn.

Manuals set most tables without lines (DocBook's default): PDFium then reads each row as one line
with single spaces between the cells, and the table reaches the index as prose. The cells are found
again from the characters' boxes: a gap between two words wider than ``_CELL_GAP`` font sizes (word
spaces are under 0.6, column gaps 1.5 and more) separates two cells. A run of such lines is a table
when its cells fall into the columns the first line (the header) sets, by left edge, right edge or
centre, and lines that fill only later columns are wrapped cells of the row above.

Prose must never become a table, so a run is kept only when it has at least two columns and two data
rows after the header, most rows fill two cells or more, at least half the columns hold short cells
(two columns of running text do not), and it is neither a bulleted or numbered list (a bullet column)
nor a contents listing (dot leaders), nor mostly set in a fixed-pitch font (code with aligned
comments; a table's first column of commands may be).

pdfplumber's text strategy (MIT) was the other candidate, tried on six pages of the Debian Reference
(20, 38, 53, 105, 171, 200) with its default settings: it needs pdfminer's parse of each page (2 to
16 s a page on this shared, loaded machine) and returned one "table" spanning the whole page on every
one of them, the two prose pages included (page 20 as 73 rows of 31 columns), with words glued
("DebianReference") or cut ("packag | e"); it would need this module's guards on top anyway.
"""

from __future__ import annotations

import ctypes
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from ingest.parsers.pdf_tables import Table

_CELL_GAP = 1.2  # font sizes: a wider gap between two words on a line separates two cells
_ALIGN = 0.6  # font sizes: a cell this close to a column's left edge, right edge or centre is in it
_ROW_GAP = 3.0  # font sizes between two baselines: further apart, the table has ended
_WRAP_GAP = 1.6  # font sizes: a wrapped cell's next line sits at most this far below the row
_MIN_DATA_ROWS = 2
_SHORT_CELL_WORDS = 4  # a column whose cells are mostly this short is a table column, not running text
_MAX_HEADER_WORDS = 8
_MAX_LINE_CHARS = 400  # longer "lines" are not table rows (and not worth measuring)
_BULLET_CELL = re.compile(r"^(?:[•◦▪▫‣●○■□·∙⁃*+–—-]|\(?\d{1,2}[.)]|\(?[a-zA-Z][.)])$")
_LEADERS = re.compile(r"(?:\.\s*){4,}")


class Line(Protocol):
    """What this module reads of a PDF text line (``ingest.parsers.pdf._Line``)."""

    text: str
    size: float
    baseline: float | None
    mono: bool
    start: int  # index of the line's first character in the text page; -1 when unknown (OCR)
    length: int


@dataclass
class _Cell:
    left: float
    right: float
    text: str


def find_aligned_tables(lines: Sequence[Line], textpage: pdfium.PdfTextPage) -> list[tuple[Table, list[int]]]:
    """Tables among ``lines`` found by the alignment of their cells, each with the indices of the lines
    it was read from, in order."""
    cells = [None if line.start < 0 or line.length > _MAX_LINE_CHARS else _cells(textpage, line) for line in lines]
    found = []
    i = 0
    while i < len(lines):
        row = cells[i]
        if row is not None and len(row) >= 2:
            table = _grow(lines, cells, i)
            if table is not None:
                found.append(table)
                i = table[1][-1] + 1
                continue
        i += 1
    return found


def _cells(textpage: pdfium.PdfTextPage, line: Line) -> list[_Cell]:
    """The line cut into cells at wide gaps between words."""
    raw = textpage.get_text_range(line.start, line.length) if line.length else ""
    left, right, bottom, top = (ctypes.c_double() for _ in range(4))
    words: list[_Cell] = []
    spaced = False
    for i, ch in enumerate(raw):
        if ch.isspace():
            spaced = True
            continue
        box = (ctypes.byref(left), ctypes.byref(right), ctypes.byref(bottom), ctypes.byref(top))
        if not pdfium_c.FPDFText_GetCharBox(textpage.raw, line.start + i, *box):
            continue
        if not words or left.value - words[-1].right > _CELL_GAP * line.size:
            words.append(_Cell(left.value, right.value, ch))
        else:
            words[-1].text += (" " if spaced else "") + ch
            words[-1].right = max(words[-1].right, right.value)
        spaced = False
    return words


def _column_of(cell: _Cell, columns: list[_Cell], size: float) -> int | None:
    tolerance = _ALIGN * size
    for j, column in enumerate(columns):
        if (
            abs(cell.left - column.left) <= tolerance
            or abs(cell.right - column.right) <= tolerance
            or abs((cell.left + cell.right) / 2 - (column.left + column.right) / 2) <= tolerance
        ):
            return j
    return None


def _placed(row: list[_Cell], columns: list[_Cell], size: float) -> list[int] | None:
    """The column of each cell, strictly left to right; None when a cell fits no column, or when a
    line's only cell runs into the next column (a line of prose that starts at a column's edge)."""
    placed = []
    for cell in row:
        j = _column_of(cell, columns, size)
        if j is None or (placed and j <= placed[-1]):
            return None
        placed.append(j)
    if len(row) == 1 and placed[0] + 1 < len(columns) and row[0].right > columns[placed[0] + 1].left:
        return None
    return placed


def _grow(lines: Sequence[Line], cells: list[list[_Cell] | None], first: int) -> tuple[Table, list[int]] | None:
    header = cells[first]
    assert header is not None
    columns = list(header)
    # (baseline, row line?, [(column, text)]) for every line taken, in page order
    taken: list[tuple[float, bool, list[tuple[int, str]]]] = []
    members: list[int] = []
    lowest = lines[first].baseline
    for j in range(first, len(lines)):
        line, row = lines[j], cells[j]
        if row is None or line.baseline is None or lowest is None:
            break
        size = line.size
        placed = _placed(row, columns, size)
        if placed is None:
            break
        down = lowest - line.baseline if j > first else size  # below the lowest line taken so far
        # A row starts in the first column; a lone first cell close below is that cell wrapped.
        is_row = placed[0] == 0 and (len(row) >= 2 or down > _WRAP_GAP * size)
        if is_row and not 0 < down <= _ROW_GAP * size:
            break
        # A wrapped cell's line sits close to its row, above it too when the row's short cells are
        # centred beside it (then its row's first line comes after it).
        if not is_row and not -_ROW_GAP * size <= down <= _WRAP_GAP * size:
            break
        taken.append((line.baseline, is_row, [(c, cell.text) for c, cell in zip(placed, row, strict=True)]))
        members.append(j)
        lowest = min(lowest, line.baseline)
    if sum(lines[i].mono for i in members) > len(members) / 2:
        return None  # a code listing with aligned comments
    rows = _assemble(taken, len(columns))
    if not _plausible(rows):
        return None
    sizes = [lines[i].size for i in members]
    top = (lines[first].baseline or 0.0) + max(sizes)
    bottom = (lines[members[-1]].baseline or 0.0) - 0.3 * max(sizes)
    left = min(c.left for c in columns)
    right = max(c.right for i in members for c in cells[i] or [])
    table = Table(left, bottom, right, top, rows, [c.left for c in columns], ruled=False)
    return table, members


def _assemble(taken: list[tuple[float, bool, list[tuple[int, str]]]], width: int) -> list[list[str]]:
    """Rows from the lines taken: each line that fills only some cells (a wrapped cell) joins the row
    whose first line is nearest, above or below (a short cell is often centred beside a long one);
    halfway between two, the upper one, but the lower one for a first cell (a first cell wrapped over
    two lines is read beside its second) and never the header (a long cell centred on the first row)."""
    anchors = [baseline for baseline, is_row, _ in taken if is_row]
    parts: list[list[list[tuple[float, str]]]] = [[[] for _ in range(width)] for _ in anchors]
    for baseline, _, placed in taken:
        sign = 1 if placed[0][0] == 0 else -1
        row = min(
            range(len(anchors)),
            key=lambda r: (round(abs(anchors[r] - baseline)), r == 0, sign * anchors[r]),
        )
        for column, text in placed:
            parts[row][column].append((baseline, text))
    return [[" ".join(t for _, t in sorted(cell, key=lambda p: -p[0])) for cell in row] for row in parts]


def _plausible(rows: list[list[str]]) -> bool:
    """Guards against prose, lists and contents pages read as tables."""
    header, data = rows[0], rows[1:]
    width = len(header)
    if width < 2 or len(data) < _MIN_DATA_ROWS:
        return False
    if sum(sum(bool(c) for c in row) >= 2 for row in data) < max(_MIN_DATA_ROWS, 0.6 * len(data)):
        return False
    if any(len(c.split()) > _MAX_HEADER_WORDS or c.endswith(".") for c in header):
        return False
    if any(_LEADERS.search(c) for row in rows for c in row):
        return False
    first = [row[0] for row in data if row[0]]
    if first and all(_BULLET_CELL.match(c) for c in first):
        return False
    short = 0
    for column in range(width):
        values = [len(row[column].split()) for row in data if row[column]]
        short += bool(values) and statistics.median(values) <= _SHORT_CELL_WORDS
    return short >= max(1, width / 2)
