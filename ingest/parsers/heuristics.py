"""Text-only guesses shared by the plain-text and PDF parsers: is this line a heading, a list item?"""

from __future__ import annotations

import re

BULLET = re.compile(r"^\s*(?:[•◦▪▫‣●○■□·∙⁃*+-]|–|—|\(?\d{1,2}[.)]|\(?[a-z][.)])\s+(?=\S)")
_NUMBERED_HEADING = re.compile(r"^(?:\d{1,2}(?:\.\d{1,2})*\.?|[IVX]{1,5}\.|[A-Z]\.)\s+\S")
_SMALL_WORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "as",
        "at",
        "but",
        "by",
        "for",
        "from",
        "in",
        "into",
        "nor",
        "of",
        "on",
        "or",
        "per",
        "the",
        "to",
        "vs",
        "via",
        "with",
    }
)
MAX_HEADING_WORDS = 12
_MAX_HEADING_CHARS = 90


def strip_bullet(text: str) -> str:
    """The list item's text without its bullet glyph (numbers are kept: they carry order)."""
    match = BULLET.match(text)
    if match and not any(ch.isdigit() for ch in match.group()):
        return text[match.end() :]
    return text


def is_list_item(text: str) -> bool:
    return BULLET.match(text) is not None


def _shape_ok(line: str) -> bool:
    words = line.split()
    return (
        0 < len(words) <= MAX_HEADING_WORDS
        and len(line) <= _MAX_HEADING_CHARS
        and line[-1] not in ".,;:!?"
        and sum(ch.isalpha() for ch in line) >= 2
    )


def is_title_case_heading(line: str) -> bool:
    """A strict guess, for text with no typographic signal: short, unpunctuated, Title Case or CAPS.

    "3. Maintenance", "Battery Care", "WARRANTY" qualify; "Press the button" and "Support hours." do not.
    """
    line = line.strip()
    if not _shape_ok(line):
        return False
    body = _NUMBERED_HEADING.sub(lambda m: m.group()[-1], line, count=1)
    words = [w for w in re.split(r"[\s/&-]+", body) if any(ch.isalpha() for ch in w)]
    if not words or not words[0][0].isupper():
        return False
    if body.isupper():
        return True
    significant = [w for w in words[1:] if w.lower() not in _SMALL_WORDS]
    return all(w[0].isupper() or not w[0].isalpha() for w in significant)


def is_standalone_heading(line: str) -> bool:
    """A looser guess for a line that stands alone between blank lines: short, unpunctuated, capitalised.

    Sentence-case headings ("Support hours") pass here; lists and sentences do not.
    """
    line = line.strip()
    if is_title_case_heading(line):
        return True
    return _shape_ok(line) and not is_list_item(line) and line[0].isupper()


def is_heading_shaped(line: str) -> bool:
    """Short and unpunctuated: the shape a line needs before font size or weight can make it a heading."""
    return _shape_ok(line.strip())
