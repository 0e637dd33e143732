"""Plain text (.txt, .rst, e-mail bodies) and CSV."""

from __future__ import annotations

import csv
import io
import re

from ingest.parsers.common import ElementBuilder, Unparseable, table_text
from ingest.parsers.heuristics import is_list_item, is_standalone_heading, strip_bullet

_BLOCK_SPLIT = re.compile(r"\n[ \t]*\n")
_UNDERLINE = re.compile(r"^([=\-~^*#+`'\"])\1{2,}\s*$")
_ATX = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$")
_TABULAR = re.compile(r"\t|\S {2,}\S|\|")
_CSV_ROWS_PER_ELEMENT = 200  # bounds one Table element; the chunker splits further by tokens


def text_elements(text: str, builder: ElementBuilder, *, detect_headings: bool = True) -> None:
    """Blocks separated by blank lines become paragraphs, list items or (when asked) headings.

    Headings are recognised by underlines (reStructuredText / setext), a leading '#', or a short
    capitalised line standing alone; e-mail bodies pass ``detect_headings=False`` because a lone
    "Kind regards" is not a section.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    for block in _BLOCK_SPLIT.split(text):
        lines = [line.rstrip() for line in block.split("\n") if line.strip()]
        if detect_headings:
            lines = _take_headings(lines, builder)
        if lines:
            _add_block(lines, builder)


def _take_headings(lines: list[str], builder: ElementBuilder) -> list[str]:
    """Consume heading lines at the top of a block and return the rest."""
    while lines:
        if len(lines) >= 3 and _UNDERLINE.match(lines[0]) and _UNDERLINE.match(lines[2]):
            builder.title(lines[1])  # reST over- and underlined title
            lines = lines[3:]
        elif len(lines) >= 2 and _UNDERLINE.match(lines[1]) and not _UNDERLINE.match(lines[0]):
            builder.title(lines[0])
            lines = lines[2:]
        elif (atx := _ATX.match(lines[0])) is not None:
            builder.title(atx.group(1))
            lines = lines[1:]
        elif len(lines) == 1 and is_standalone_heading(lines[0]):
            builder.title(lines[0])
            lines = []
        else:
            break
    return lines


def _add_block(lines: list[str], builder: ElementBuilder) -> None:
    if any(is_list_item(line) for line in lines):
        items: list[str] = []
        for line in lines:
            if is_list_item(line) or not items:
                items.append(strip_bullet(line.strip()))
            else:
                items[-1] += " " + line.strip()  # a wrapped continuation of the previous item
        for item in items:
            builder.add(item, "ListItem")
    elif len(lines) > 1 and sum(bool(_TABULAR.search(line.strip())) for line in lines) >= len(lines) / 2:
        builder.add("\n".join(lines))  # aligned columns or a pipe table: keep the line structure
    else:
        builder.add(unwrap(lines))


def unwrap(lines: list[str]) -> str:
    """Join hard-wrapped lines into one paragraph, mending words hyphenated at a line end."""
    out = ""
    for line in (line.strip() for line in lines):
        if not out:
            out = line
        elif out.endswith("-") and len(out) > 1 and out[-2].isalpha() and line[:1].isalpha():
            # "mainte-" + "nance" is one word; "Wi-" + "Fi" keeps its hyphen
            out = (out[:-1] if line[0].islower() else out) + line
        else:
            out += " " + line
    return out


def csv_elements(text: str, builder: ElementBuilder) -> None:
    """The rows as Table elements (header first), in groups so no single element is unbounded."""
    sample = text[:8192]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel  # one column, or too irregular to sniff: plain commas
    try:
        reader = csv.reader(io.StringIO(text, newline=""), dialect)
        rows = [row for row in reader if any(cell.strip() for cell in row)]
    except csv.Error as exc:
        raise Unparseable(f"malformed CSV ({exc}): check the quoting, or save it again as UTF-8 CSV") from exc
    if not rows:
        return
    header, body = rows[0], rows[1:]
    if not body:
        builder.add(table_text([header]), "Table")
    for start in range(0, len(body), _CSV_ROWS_PER_ELEMENT):
        builder.add(table_text([header, *body[start : start + _CSV_ROWS_PER_ELEMENT]]), "Table")
