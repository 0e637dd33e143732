"""Tables and code blocks in a passage, found so that the page shows them as a table and as code.

Ingest writes structure as plain lines (``ingest.parsers.common.table_text``, ``ingest/chunk.py``): a table
is an optional caption or lead-in line, a header line ("Format | Explanation") and one line per row that
names its cells ("Format: %j | Explanation: day of the year"); a list or code block is lines glued under
the sentence that introduces it (ending in ":"); blocks are separated by blank lines. Read back, the rule
is (the widget, ``segmentsOf`` in docqa/api/static/widget.js, applies the same; docs/api.md):

- a *row* is a line "Name: value | Name: value ..." (two cells or more, the first named, as
  ``rag.units`` reads rows); a run of rows is a table, with the line above as its header when that line
  is cells joined by " | "; the columns are the header's cells, else the names in order of appearance;
- a line *looks like code* when it keeps layout (indented, or a run of spaces inside: ingest collapses
  spaces everywhere but in code), starts with a prompt ("$ ", "# ", "% ", "> ", ">>> "), or is
  command-shaped: at most 16 words, not ending like a sentence (".", "!", "?", ":"), no "term: definition"
  ": ", and a code token (an option " -x" / " --name", a path "/etc/x" "./x" "~/x", "name=value", a call
  "name(...)" at the end, or a last character "{", "}", ";" or "\\");
- a *block* is a run of non-blank lines outside tables; the lines under a lead-in (a line ending in ":",
  the first one this holds for) are one code block when at least half of them look like code; a block
  right after code (blank lines between) continues it on the same test; elsewhere lines that keep layout
  or start with a prompt are code. A list under a lead-in ("Eco: quiet, 60 min") stays text, and so does
  everything else. Adjacent chunks merged into one passage join with a single line break, so a table's
  lines, not only blank lines, end a block.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from rag.units import TABLE_ROW  # the rows ingest writes, read as the evidence units read them

_PROMPT = re.compile(r"^(?:\$|#|%|>|>>>) \S")
_LAYOUT = re.compile(r"^[ \t]+\S|\S[ \t]{2,}\S")
_CODE_TOKEN = re.compile(r"(?:^|\s)--?[A-Za-z]|(?:^|\s)(?:\.{1,2}|~)?/[\w.-]|\w=\S|\b[A-Za-z_]\w*\([^()]*\)$|[{};\\]$")
_SENTENCE_END = re.compile(r"[.!?:]$")
MAX_COMMAND_WORDS = 16
CELL_SEP = " | "


@dataclass(frozen=True)
class Row:
    """One table row: where its line lies in the text, and its value under each column ("" if none)."""

    start: int
    end: int
    cells: tuple[str, ...]


@dataclass(frozen=True)
class Segment:
    """A stretch of the text shown one way: as text, as a table (``columns``, ``rows``) or as code."""

    kind: Literal["text", "table", "code"]
    start: int
    end: int
    columns: tuple[str, ...] = ()
    rows: tuple[Row, ...] = ()


def is_row(line: str) -> bool:
    return TABLE_ROW.match(line) is not None


def keeps_layout(line: str) -> bool:
    return _LAYOUT.search(line) is not None or _PROMPT.match(line) is not None


def looks_like_code(line: str) -> bool:
    """A line that keeps code layout, starts with a prompt or is shaped like a command (module docstring)."""
    if keeps_layout(line):
        return True
    text = line.strip()
    return (
        bool(text)
        and _SENTENCE_END.search(text) is None
        and ": " not in text
        and len(text.split()) <= MAX_COMMAND_WORDS
        and _CODE_TOKEN.search(text) is not None
    )


def _line_spans(text: str) -> list[tuple[int, int]]:
    spans, at = [], 0
    for line in text.split("\n"):
        spans.append((at, at + len(line)))
        at += len(line) + 1
    return spans


def _kinds(text: str, lines: list[tuple[int, int]]) -> list[str]:
    """Each line's kind: 'row', 'header', 'code' or 'text'."""

    def line(i: int) -> str:
        return text[slice(*lines[i])]

    kinds = ["row" if is_row(line(i)) else "text" for i in range(len(lines))]
    for i in range(1, len(lines)):
        if kinds[i] == "row" and kinds[i - 1] == "text" and CELL_SEP in line(i - 1):
            kinds[i - 1] = "header"
    blocks: list[list[int]] = []  # runs of non-blank lines outside tables
    for i in range(len(lines)):
        if kinds[i] == "text" and line(i).strip():
            if blocks and blocks[-1][-1] == i - 1:
                blocks[-1].append(i)
            else:
                blocks.append([i])
    previous: list[int] = []
    for block in blocks:
        after_code = bool(previous) and kinds[previous[-1]] == "code"
        after_code = after_code and all(not line(i).strip() for i in range(previous[-1] + 1, block[0]))
        leads = [k for k, i in enumerate(block[:-1]) if line(i).rstrip().endswith(":")]
        bodies = [block[k + 1 :] for k in leads] + ([block] if after_code else [])
        body = next((b for b in bodies if 2 * sum(looks_like_code(line(i)) for i in b) >= len(b)), None)
        if body is not None:  # the first lead-in whose lines are code
            for i in body:
                kinds[i] = "code"
        else:
            for i in block:
                if keeps_layout(line(i)):
                    kinds[i] = "code"
        previous = block
    return kinds


def _table(text: str, header: tuple[int, int] | None, rows: list[tuple[int, int]]) -> Segment:
    """The table of ``rows`` (line spans), its columns from ``header`` or else from the rows' names."""
    columns = [c.strip() for c in text[slice(*header)].split(CELL_SEP)] if header else []
    parsed: list[tuple[int, int, dict[int, str]]] = []
    for a, b in rows:
        cells: dict[int, str] = {}
        column = -1
        for cell in (c.strip() for c in text[a:b].split(CELL_SEP)):
            name = max((c for c in columns if c and cell.startswith(c + ": ")), key=len, default=None)
            if name is None and ": " in cell:
                name = cell.split(": ", 1)[0]
                columns.append(name)
            if name is not None:
                column, value = columns.index(name), cell[len(name) + 2 :]
            else:  # a cell equal to its column's name, or one without a name: by position
                column, value = (columns.index(cell) if cell in columns else column + 1), cell
                if column >= len(columns):
                    columns.append("")
            cells[column] = f"{cells[column]} {value}" if column in cells else value
        parsed.append((a, b, cells))
    start = header[0] if header else rows[0][0]
    out = tuple(Row(a, b, tuple(cells.get(i, "") for i in range(len(columns)))) for a, b, cells in parsed)
    return Segment("table", start, rows[-1][1], tuple(columns), out)


def segments(text: str) -> list[Segment]:
    """The text cut into text, table and code segments that cover it in order (module docstring)."""
    lines = _line_spans(text)
    kinds = _kinds(text, lines)
    found: list[Segment] = []
    i = 0
    while i < len(lines):
        kind = kinds[i]
        if kind in ("header", "row"):
            header = lines[i] if kind == "header" else None
            j = i + 1 if header else i
            rows = []
            while j < len(lines) and kinds[j] == "row":
                rows.append(lines[j])
                j += 1
            if rows:
                found.append(_table(text, header, rows))
            i = j if rows else i + 1
            continue
        if kind == "code":
            j = i
            while j + 1 < len(lines) and (kinds[j + 1] == "code" or _blank_then_code(text, lines, kinds, j + 1)):
                j += 1
            found.append(Segment("code", lines[i][0], lines[j][1]))
            i = j + 1
            continue
        i += 1
    out: list[Segment] = []
    at = 0
    for seg in found:
        if seg.start > at:
            out.append(Segment("text", at, seg.start))
        out.append(seg)
        at = seg.end
    if at < len(text) or not out:
        out.append(Segment("text", at, len(text)))
    return out


def _blank_then_code(text: str, lines: list[tuple[int, int]], kinds: list[str], i: int) -> bool:
    """Line ``i`` is blank and the next non-blank line is code: the blank line is inside the code block."""
    while i < len(lines) and not text[slice(*lines[i])].strip():
        i += 1
    return i < len(lines) and kinds[i] == "code"
