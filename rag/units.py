"""Evidence units of a chunk: its sentences, and the structures ingest keeps whole.

Ingest writes a list, a code block or a table as one block of lines (joined by single line breaks, blocks
by blank lines), opened by the sentence that introduces it ("... the following storage classes:") or the
table's caption. A quote of the introducing sentence alone points at the answer without holding it, and a
list item or a table row alone may not say what it is an item of. So, in a block that opens with such a
lead-in:
- the whole block is one unit when it is short enough to quote (``max_block_chars``): the lead-in and
  every item, which is what a "which ... are there" question needs;
- otherwise each item (each row, each line; a long item's sentences) is a unit carrying the lead-in
  (``Evidence.lead``), shown and checked with it, and the lead-in alone is no unit.
A table's header line is no unit when its rows carry the header names. A sentence that only points
elsewhere ("See set datafile separator (p. 109).") is no unit either: it cannot answer, and a quote of it
tells the reader nothing. Everything else is split into sentences (``rag.sentences``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from rag.sentences import sentence_spans

MIN_UNIT_CHARS = 3  # shorter units ("1.", "a)") are list labels, not evidence
MAX_LEAD_CHARS = 240  # a longer lead-in is a paragraph: repeated with every item, it would crowd the item out
MAX_ITEM_CHARS = 300  # a longer item or line is split into sentences
_BLOCK = re.compile(r"\n[ \t]*\n")
TABLE_ROW = re.compile(r"[^|]*\S: [^|]* \| ")  # "Name: value | Name: value", as ingest writes table rows
_POINTER = re.compile(r"^\(?(?:see(?: also)?|refer to|for (?:more|further) (?:information|details)[^,]*, see)\s", re.I)


def points_elsewhere(text: str) -> bool:
    """A cross-reference and nothing else: "See set datafile separator (p. 109).", "(see also plot)"."""
    return len(text.split()) <= 16 and _POINTER.match(text.strip()) is not None


def _lines(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """The non-blank lines of ``text[start:end]`` as trimmed spans."""
    spans = []
    at = start
    for line in text[start:end].split("\n"):
        a, b = at, at + len(line)
        at = b + 1
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if b > a:
            spans.append((a, b))
    return spans


def _sentences(text: str, start: int, end: int) -> list[tuple[int, int]]:
    return [(start + a, start + b) for a, b in sentence_spans(text[start:end])]


def _lead(text: str, lines: list[tuple[int, int]]) -> tuple[int, int] | None:
    """The span of the sentence or caption that introduces the block's other lines, if it has one: the
    last sentence of a first line ending in ":", or a first line above table rows that is not one."""
    if len(lines) < 2:
        return None
    first = text[lines[0][0] : lines[0][1]]
    rows = sum(bool(TABLE_ROW.match(text[a:b])) for a, b in lines[1:])
    if first.endswith(":") or (rows >= 1 and not TABLE_ROW.match(first) and " | " not in first):
        return _sentences(text, *lines[0])[-1]
    return None


def unit_spans(text: str, max_block_chars: int) -> Iterator[tuple[int, int, str | None]]:
    """``(start, end, lead)`` of each evidence unit of a chunk's ``text``, in order (module docstring)."""
    at = 0
    for sep in [*_BLOCK.finditer(text), None]:
        end = sep.start() if sep else len(text)
        start, at = at, (sep.end() if sep else len(text))
        lines = _lines(text, start, end)
        lead = _lead(text, lines)
        if lead is None:
            for a, b in _sentences(text, start, end):
                yield a, b, None
            continue
        yield from ((a, b, None) for a, b in _sentences(text, lines[0][0], lead[0]))  # before the lead-in
        items = lines[1:]
        rows = [s for s in items if TABLE_ROW.match(text[s[0] : s[1]])]
        if rows and items[0] not in rows:
            items = [s for s in items if s is not items[0]]  # a header line: the rows carry its names
        if items[-1][1] - lead[0] <= max_block_chars:
            yield lead[0], items[-1][1], None
            continue
        lead_text = text[lead[0] : lead[1]]
        carried = lead_text if len(lead_text) <= MAX_LEAD_CHARS else None
        for a, b in items:
            whole = b - a <= MAX_ITEM_CHARS or TABLE_ROW.match(text[a:b]) is not None
            for x, y in [(a, b)] if whole else _sentences(text, a, b):
                yield x, y, carried
