"""Page furniture in PDFs: running headers and footers, page numbers, and contents pages.

Real manuals repeat a header or footer on every page, often with the page number in it ("Debian
Reference 143 / 233", "22 Chapter 4. Source packages" on even pages, "4.4. Debian changelog 21" on
odd ones), and open with contents pages whose every line ends in a page number. Left in, they land
inside chunks, become chunk headings and win retrieval for unrelated questions. Two rules find the
running lines, both only among the first and last few lines of a page and never for a line set
larger than the body text (a heading opening every page is content):

- a short line that starts or ends with the page's printed number, set apart from the text next to
  it, is a running line whatever its words (section titles in footers change every few pages);
- a line repeated on many pages (its numbers masked when set smaller than the body) is a running
  line: on 60% of all pages, or on 40% of the pages between its first and last appearance when it
  stands apart (a chapter title in the header of that chapter's pages).

Printed page numbers come from the PDF's /PageLabels; without them, from a constant offset between
physical pages and numbers found at page edges (front matter numbered apart), when one dominates.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

EDGE_LINES = 3  # lines at the top and at the bottom of a page that may be running lines
_MAX_RUNNING_WORDS = 24  # footers may carry a long section title
_APART = 1.6  # a running line sits at least this many font sizes from the nearest text line
_GLOBAL_SHARE = 0.6
_LOCAL_SHARE = 0.4
_MIN_REPEATS = 3
PAGE_NUMBER = re.compile(r"^(?:page\s*)?\d{1,4}(?:\s*(?:of|/)\s*\d{1,4})?$|^[-–—]\s*\d{1,4}\s*[-–—]$", re.I)
_DIGITS = re.compile(r"\d+")
_HEAD_NUMBER = re.compile(r"^(\d{1,4}|[ivxlcdm]{1,7})\b", re.I)
_TAIL_NUMBER = re.compile(r"\b(\d{1,4}|[ivxlcdm]{1,7})(?:\s*/\s*\d{1,4})?$", re.I)
_SPACES = re.compile(r"\s+")
# Contents entries: "4.2 Package relationships . . . . . 20", "Chapter 3 Installing 41", "iv Preface xi"
_LEADER_ENTRY = re.compile(r"\S.*?(?:\s*\.){3,}\s*(?:\d{1,4}|[ivxlcdm]{1,7})$", re.I)
_NUMBERED_ENTRY = re.compile(
    r"^(?:(?:chapter|appendix|part|section|table|figure|example)\s+)?[\dA-Z][\d.]*\.?\s+\S.{0,120}?\s(\d{1,4})$", re.I
)
_CONTENTS_TITLE = re.compile(
    r"^(?:table of )?contents$|^list of (?:tables|figures|examples|illustrations|procedures)$", re.I
)
_MIN_ENTRIES = 5
_ENTRY_SHARE = 0.5


class Line(Protocol):
    """What this module reads of a PDF text line (``ingest.parsers.pdf._Line``)."""

    text: str
    size: float
    baseline: float | None
    page: int


@dataclass
class Furniture:
    """What was found: lines to drop (by id), contents pages, and printed page numbers."""

    running: set[int]
    contents_pages: set[int]
    labels: dict[int, str]  # physical page (1-based) -> printed page number, where one is known


def edge_lines(lines: Sequence[Line]) -> list[Line]:
    if len(lines) <= 2 * EDGE_LINES:
        return list(lines)
    return [*lines[:EDGE_LINES], *lines[-EDGE_LINES:]]


def printed_numbers(pages: Sequence[Sequence[Line]], pdf_labels: dict[int, str]) -> dict[int, str]:
    """The number printed on each page: the PDF's page labels, else a dominant offset from edge numbers."""
    if pdf_labels:
        return dict(pdf_labels)
    offsets: Counter[int] = Counter()
    for number, lines in enumerate(pages, start=1):
        seen = set()
        for line in edge_lines(lines):
            for value in _edge_numbers(line.text):
                if value.isdigit():
                    seen.add(int(value) - number)
        offsets.update(seen)
    if not offsets:
        return {}
    offset, count = offsets.most_common(1)[0]
    if count < _MIN_REPEATS or count < 0.3 * len(pages):
        return {}
    # Only pages where that number is printed: front matter and unnumbered pages keep none.
    labels = {}
    for number, lines in enumerate(pages, start=1):
        expected = str(number + offset)
        if any(expected in _edge_numbers(line.text) for line in edge_lines(lines)):
            labels[number] = expected
    return labels


def find_furniture(pages: Sequence[Sequence[Line]], body: float, pdf_labels: dict[int, str]) -> Furniture:
    labels = printed_numbers(pages, pdf_labels)
    running: set[int] = set()
    keyed: dict[tuple[str, float], list[tuple[int, Line, bool]]] = {}
    for number, lines in enumerate(pages, start=1):
        label = labels.get(number, str(number))
        for line in edge_lines(lines):
            if line.size > body + 0.25:
                continue
            if PAGE_NUMBER.match(line.text):
                running.add(id(line))
                continue
            apart = _stands_apart(line, lines)
            if apart and _carries_page_number(line.text, label):
                running.add(id(line))
                continue
            keyed.setdefault(_key(line, body), []).append((number, line, apart))
    for occurrences in keyed.values():
        pages_with = sorted({n for n, _, _ in occurrences})
        if len(pages_with) < _MIN_REPEATS:
            continue
        span = pages_with[-1] - pages_with[0] + 1
        everywhere = len(pages) >= 3 and len(pages_with) >= _GLOBAL_SHARE * len(pages)
        apart = sum(a for _, _, a in occurrences) >= 0.8 * len(occurrences)
        if everywhere or (apart and len(pages_with) >= _LOCAL_SHARE * span):
            running.update(id(line) for _, line, _ in occurrences)
    contents = {
        number
        for number, lines in enumerate(pages, start=1)
        if is_contents_page([line.text for line in lines if id(line) not in running])
    }
    return Furniture(running, contents, {n: v for n, v in labels.items() if v != str(n)})


def is_contents_page(texts: Sequence[str]) -> bool:
    """Most lines are contents entries (dot leaders, or numbered titles ending in ascending page numbers)."""
    if not texts:
        return False
    leaders = [t for t in texts if _LEADER_ENTRY.match(t)]
    numbered = [m for t in texts if (m := _NUMBERED_ENTRY.match(t)) and not _LEADER_ENTRY.match(t)]
    entries = len(leaders) + len(numbered)
    titled = any(_CONTENTS_TITLE.match(t.strip()) for t in texts[:3])
    if entries < _MIN_ENTRIES and not (titled and entries >= 2):
        return False
    if entries < _ENTRY_SHARE * len(texts):
        return False
    if len(leaders) >= 3 or titled:
        return True
    # Numbered entries alone: their page numbers must (mostly) rise, as a contents list's do.
    values = [int(m.group(1)) for m in numbered]
    rising = sum(b >= a for a, b in itertools.pairwise(values))
    return rising >= 0.8 * (len(values) - 1)


def _edge_numbers(text: str) -> set[str]:
    """The number (or roman numeral) a line starts or ends with: where page numbers sit in a header."""
    text = text.strip()
    return {m.group(1).lower() for m in (_HEAD_NUMBER.match(text), _TAIL_NUMBER.search(text)) if m}


def _carries_page_number(text: str, label: str) -> bool:
    words = text.split()
    if len(words) > _MAX_RUNNING_WORDS:
        return False
    return label.lower() in _edge_numbers(text)


def _key(line: Line, body: float) -> tuple[str, float]:
    text = _SPACES.sub(" ", line.text.strip())
    if line.size < body:
        text = _DIGITS.sub("#", text)
    return text, line.size


def _stands_apart(line: Line, lines: Sequence[Line]) -> bool:
    """No other text line within ``_APART`` font sizes above or below (lines on the same baseline
    do not count: a header's left and right parts)."""
    if line.baseline is None:
        return False
    gaps = [
        abs(other.baseline - line.baseline)
        for other in lines
        if other is not line and other.baseline is not None and abs(other.baseline - line.baseline) > 1.0
    ]
    return not gaps or min(gaps) >= _APART * line.size
