"""Evidence units: a list, code block or table with its lead-in is quoted whole when short, and each item
carries the lead-in when long; a sentence that only points elsewhere is never a unit."""

from __future__ import annotations

import pytest

from rag.evidence import units_of
from rag.prompting import Passage, quote
from rag.types import StoredChunk
from rag.units import points_elsewhere, unit_spans

LIST = (
    "SQLite is small. Each value has one of the following storage classes:\n"
    "NULL. The value is a NULL value.\n"
    "INTEGER. The value is a signed integer.\n"
    "TEXT. The value is a text string."
)
TABLE = (
    "Table 3: Time formats\n"
    "Format | Explanation\n"
    "Format: %j | Explanation: day of the year, 1-366\n"
    "Format: %w | Explanation: day of the week, 0-6 (Sunday = 0)"
)


def units(text: str, max_block_chars: int) -> list[tuple[str, str | None]]:
    return [(text[a:b], lead) for a, b, lead in unit_spans(text, max_block_chars)]


def test_a_short_list_is_one_unit_with_its_lead_in() -> None:
    assert units(LIST, 500) == [
        ("SQLite is small.", None),
        (LIST.split(" ", 3)[3], None),  # the lead-in sentence and every item
    ]


def test_a_long_list_gives_its_items_each_carrying_the_lead_in() -> None:
    lead = "Each value has one of the following storage classes:"
    assert units(LIST, 40) == [
        ("SQLite is small.", None),
        ("NULL. The value is a NULL value.", lead),
        ("INTEGER. The value is a signed integer.", lead),
        ("TEXT. The value is a text string.", lead),
    ]


def test_table_rows_carry_the_caption_and_the_header_line_is_no_unit() -> None:
    assert units(TABLE, 0) == [
        ("Format: %j | Explanation: day of the year, 1-366", "Table 3: Time formats"),
        ("Format: %w | Explanation: day of the week, 0-6 (Sunday = 0)", "Table 3: Time formats"),
    ]
    assert units(TABLE, 500) == [(TABLE, None)]


def test_blocks_without_a_lead_in_are_sentences_and_lines() -> None:
    text = "First sentence. Second one.\n\nplot sin(x)\nreplot\n\nModel | Note\nModel: X2 | Note: Fast."
    assert [u for u, _ in units(text, 500)] == [
        "First sentence.", "Second one.", "plot sin(x)", "replot", "Model | Note", "Model: X2 | Note: Fast.",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "pointer"),
    [
        ("See set datafile separator (p. 109).", True),
        ("(see also plot)", True),
        ("For more information on formats, see the strftime page.", True),
        ("Seeding the generator is done with rand(x).", False),
        ("The separator is whitespace by default; see below.", False),
    ],
)
def test_pointers_elsewhere(text: str, pointer: bool) -> None:
    assert points_elsewhere(text) is pointer


def test_units_of_drop_pointers_and_a_quote_shows_the_lead_in() -> None:
    text = "See storage classes (p. 3).\n\n" + LIST
    chunk = StoredChunk(7, "h", 0, text, 2, 2, None, "NarrativeText", ["docs/types.html"])
    found = units_of([Passage(1, [chunk], 1.0)], max_block_chars=40)
    assert [u.text for u in found][:2] == ["SQLite is small.", "NULL. The value is a NULL value."]
    item = found[1]
    assert text[item.start : item.end] == item.text
    shown, cites = quote(item, [Passage(1, [chunk], 1.0)])
    assert shown == (
        'From types.html, page 2: "Each value has one of the following storage classes: … '
        'NULL. The value is a NULL value." [1]'
    )
    assert [c.n for c in cites] == [1]
