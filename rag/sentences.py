"""Where a sentence ends: one rule for evidence spans, verification and citation mapping.

A full stop, "!" or "?" (with any closing quote or bracket) followed by white space ends a sentence,
and a line break always ends a unit, so table rows, list items and CSV lines stand alone; a table row
("Model: X200 | Battery life: 4 h. Rated at 20 C.") is never cut inside, so a quote holds the whole row
with its header names. Three kinds
of stop do not end one, because cutting there loses the answer: an initial or a dotted abbreviation
("British bacteriologist J. F. D. Shrewsbury", "the U.S. Army", "e.g. a fuse"), a common title or
abbreviation ("Dr. Smith", "approx. 40", a page reference "(p. 109)"), and a stop followed by a
lower-case word or an operator ("the factorial (p − 1)! + 1 is divisible by p").
"""

from __future__ import annotations

import re

_CANDIDATE = re.compile(r"(?<=[.!?])[\"'”’)\]]*[ \t\r\f\v]+|\s*\n\s*")
# Titles and abbreviations that are followed by more of the same sentence far more often than they end one.
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof st sr jr mt ft gen col lt sgt capt rev gov sen rep pres no nos fig figs vol vols "
    "pp ch sec art approx ca cf vs inc ltd co corp dept est min max".split()
)
# "J." (an initial) or "e.g.", "U.S." (letters and stops); a lower-case "p." alone ends ("divisible by p.").
_INITIAL_OR_DOTTED = re.compile(r"(?:^|[\s(\"'“])(?:(?:[A-Za-z]\.)+[A-Za-z]|[A-Z])\.$")
_CONTINUES = re.compile(r"[a-z+=*/×−÷^]")  # not "<" (markup), "-" (a dash or a list item)
_TABLE_ROW = re.compile(r"[^|]*\S: [^|]* \| ")  # "Name: value | Name: value", as ingest writes table rows


def _in_table_row(text: str, at: int) -> bool:
    start = text.rfind("\n", 0, at) + 1
    end = text.find("\n", at)
    return _TABLE_ROW.match(text[start : end if end >= 0 else len(text)]) is not None


def _ends_sentence(text: str, stop: int, after: int) -> bool:
    """Whether the stop at ``text[stop]`` ends a sentence; ``after`` is where the next one would start."""
    if text[stop] != ".":
        return not (after < len(text) and _CONTINUES.match(text[after]))
    head = text[max(0, stop - 24) : stop + 1]
    if _INITIAL_OR_DOTTED.search(head):
        return False
    word = re.search(r"(\w+)\.$", head)
    if word and word.group(1).lower() in _ABBREVIATIONS:
        return False
    if word and word.group(1) == "p" and after < len(text) and text[after].isdigit():
        return False  # a page reference, "(p. 109)"
    return not (after < len(text) and _CONTINUES.match(text[after]))


def sentence_spans(text: str, min_chars: int = 1) -> list[tuple[int, int]]:
    """Character spans of the sentences and lines of ``text``, white space trimmed; spans shorter than
    ``min_chars`` are dropped."""
    spans = []
    start = 0
    for match in _CANDIDATE.finditer(text):
        if "\n" not in match.group(0):
            stop = match.start() - 1
            while stop > start and text[stop] in "\"'”’)]":
                stop -= 1
            if stop < start or text[stop] not in ".!?" or not _ends_sentence(text, stop, match.end()):
                continue
            if _in_table_row(text, stop):
                continue
        spans.append((start, match.start() + len(match.group(0).rstrip())))
        start = match.end()
    spans.append((start, len(text)))
    out = []
    for a, b in spans:
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if b - a >= min_chars:
            out.append((a, b))
    return out


def split_sentences(text: str) -> list[str]:
    """The sentences and lines of ``text``, trimmed, empty ones dropped."""
    return [text[a:b] for a, b in sentence_spans(text)]
