"""Pieces every parser shares: the failure signal, text clean-up and the section-tracking builder."""

from __future__ import annotations

import re
import unicodedata

from rag.types import Element


class Unparseable(Exception):
    """Raised by a parser for a bad input; ``parse_file`` turns it into an IngestError naming the file.

    ``reason`` is written for the person who must act: what is wrong, then what to do.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_LIGATURES = re.compile("[\ufb00-\ufb06]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u00ad\u200b\ufeff]")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")


def clean_text(text: str) -> str:
    """Normalise one element's text: NFC, no control characters or soft hyphens, single spaces per line.

    Line breaks survive (they carry table rows and list structure); blank runs collapse to one blank line.
    """
    text = unicodedata.normalize("NFC", text)
    text = _LIGATURES.sub(lambda m: unicodedata.normalize("NFKC", m.group()), text)
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()


def clean_code(text: str) -> str:
    """Like clean_text, but every line keeps its leading indentation and inner spacing (code)."""
    text = unicodedata.normalize("NFC", text).expandtabs(4)
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n").replace("\u00a0", " "))
    lines = [line.rstrip() for line in text.split("\n")]
    while lines and not lines[0].strip():
        lines.pop(0)
    return "\n".join(lines).rstrip()


def one_line(text: str) -> str:
    """Text with every whitespace run (line breaks included) collapsed to one space."""
    return " ".join(clean_text(text).split())


class ElementBuilder:
    """Collects elements in reading order and stamps each with the heading of its section.

    A Title element opens a section: its own ``heading`` is its text, and every later element carries
    it until the next Title. Empty texts are dropped here, so parsers need not check.
    """

    def __init__(self) -> None:
        self.elements: list[Element] = []
        self.heading: str | None = None
        self.page_labels: dict[int, str] = {}  # physical page -> printed label, where they differ
        self.stats: dict[str, int] = {}  # figures for the ingest report (pages, tables, OCR pages, ...)

    def title(self, text: str, page: int | None = None) -> None:
        text = one_line(text)
        if text:
            self.heading = text
            self.elements.append(Element(text, "Title", page, text))

    def add(
        self, text: str, kind: str = "NarrativeText", page: int | None = None, *, keep_layout: bool = False
    ) -> None:
        """Add one element; ``keep_layout`` (code) keeps each line's indentation and inner spacing."""
        text = clean_code(text) if keep_layout else clean_text(text)
        if text:
            self.elements.append(Element(text, kind, page, self.heading))

    def first_title(self) -> str | None:
        return next((e.text for e in self.elements if e.kind == "Title"), None)


def table_text(rows: list[list[str]], *, header: bool = True) -> str:
    """Render a table as one line per row: the header row's cells joined by ' | ', then each data row
    with its header names ("Model: X200 | Battery life: 4 h"), so a row read or retrieved alone still
    says what each value is. Without a header (``header=False``) every row is plain cells.

    Empty rows and columns (layout spacers) are dropped, and so are the empty cells of a data row; each
    cell is flattened to one line so a row is always one line, which is what the chunker relies on when
    it splits a large table by rows (repeating the header line).
    """
    lines = []
    names: list[str] | None = None
    flat = [[one_line(c) for c in row] for row in rows]
    width = max((len(r) for r in flat), default=0)
    used = [i for i in range(width) if any(i < len(r) and r[i] for r in flat)]  # spacer columns dropped
    for row in flat:
        cells = [row[i] if i < len(row) else "" for i in used]
        if not any(cells):
            continue
        if header and names is None:
            names = cells
            lines.append(" | ".join(c for i, c in enumerate(cells) if i == 0 or c != cells[i - 1]))
        elif names is not None:
            lines.append(" | ".join(_keyed(names, cells)))
        else:
            lines.append(" | ".join(cells))
    return "\n".join(lines)


def _keyed(names: list[str], cells: list[str]) -> list[str]:
    """Each cell with its column's name; a cell spanning columns (repeated per column) appears once."""
    out = []
    previous = None
    for i, cell in enumerate(cells):
        name = names[i] if i < len(names) else ""
        if not cell or (name, cell) == previous:
            continue
        previous = (name, cell)
        out.append(f"{name}: {cell}" if name and name != cell else cell)
    return out
