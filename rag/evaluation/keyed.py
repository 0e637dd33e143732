"""Scoring answers against key strings: the pure part of ``docqa eval answers --questions``.

A question set written from real documents says, for each question, the few strings a right answer must
contain (``must_contain``: a value, a command, a name; each may offer alternatives separated by `` | ``).
SQuAD's exact match and F1 punish a right answer phrased differently; containment of short keys does not,
and it still fails an answer that misses the value. Matching is case-insensitive, after unifying quotes,
dashes and spaces, and on boundaries: a key that starts (ends) with a letter or digit must not be preceded
(followed) by one, so "10" is not found in "100".

Each answer gets one verdict, by what the user was shown:

- answerable question: ``right`` (the model's own answer holds every key), ``wrong`` (the model's own answer
  misses one), ``quote_holds`` / ``quote_misses`` (a quoted passage was shown instead: does it hold every
  key?), ``declined``;
- unanswerable question: ``declined`` (right), ``answered`` (a model's answer shown) or ``answered_quote``.

The issue's targets are checked on the totals, and the same figures are given per kind and per doc set.
"""

from __future__ import annotations

import re
import statistics
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

ANSWERABLE_VERDICTS = ("right", "quote_holds", "wrong", "quote_misses", "declined")
UNANSWERABLE_VERDICTS = ("declined", "answered", "answered_quote")
# (figure, comparison, target): the acceptance targets of issue 24, on answerable / unanswerable questions.
TARGETS = (
    ("right_or_quote_holds", ">=", 0.75),
    ("wrong_shown", "<=", 0.05),
    ("unanswerable_declined", ">=", 0.90),
    ("answerable_declined", "<=", 0.10),
)
_DASHES = dict.fromkeys(map(ord, "\u2010\u2011\u2012\u2013\u2014\u2015\u2212"), "-")
_QUOTES = {
    **dict.fromkeys(map(ord, "\u2018\u2019\u201a\u2032"), "'"),
    **dict.fromkeys(map(ord, "\u201c\u201d\u201e"), '"'),
}


def normalise(text: str) -> str:
    """Lower case, NFKC, one kind of dash and quote, no space after a comma, single spaces."""
    text = unicodedata.normalize("NFKC", text).translate(_DASHES).translate(_QUOTES).lower()
    text = re.sub(r"\s+", " ", text)
    return re.sub(r"\s*,\s*", ",", text).strip()


def alternatives(key: str) -> list[str]:
    """``"1000 | 1,000"`` -> ``["1000", "1,000"]`` (normalised, empty ones dropped)."""
    return [alt for alt in (normalise(part) for part in key.split(" | ")) if alt]


def key_found(text: str, key: str) -> bool:
    """Whether any alternative of ``key`` occurs in ``text`` on boundaries (see the module docstring)."""
    hay = normalise(text)
    for alt in alternatives(key):
        left = r"(?<![0-9a-z])" if alt[0].isalnum() else ""
        right = r"(?![0-9a-z])" if alt[-1].isalnum() else ""
        if re.search(left + re.escape(alt) + right, hay):
            return True
    return False


def missing_keys(text: str, must_contain: Iterable[str]) -> list[str]:
    """The keys of ``must_contain`` that ``text`` lacks."""
    return [key for key in must_contain if not key_found(text, key)]


def verdict(*, answerable: bool, declined: bool, quoted: bool, shown: str, must_contain: Sequence[str]) -> str:
    """One verdict for what was shown (``quoted``: the answer is a passage quoted, not the model's words)."""
    if declined:
        return "declined"
    if not answerable:
        return "answered_quote" if quoted else "answered"
    holds = not missing_keys(shown, must_contain)
    if quoted:
        return "quote_holds" if holds else "quote_misses"
    return "right" if holds else "wrong"


@dataclass(frozen=True)
class CitationMatch:
    file: bool | None  # a cited passage comes from the expected file (None: no file expected or nothing cited)
    page: bool | None  # ... and from the expected page (None: no page expected)


def citation_match(cited: Sequence[tuple[str, int | None]], file: str | None, page: int | None) -> CitationMatch:
    """Compare the answer's citations (path relative to the corpus root, 1-based page) with the question's."""
    if file is None or not cited:
        return CitationMatch(None, None)
    same_file = [p for f, p in cited if f == file]
    return CitationMatch(bool(same_file), None if page is None else page in same_file)


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Counts per verdict and the targets' figures for a group of scored rows (each with ``answerable``,
    ``verdict`` and optionally ``file_cited`` / ``page_cited`` / ``seconds``)."""
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    count = {v: sum(r["verdict"] == v for r in answerable) for v in ANSWERABLE_VERDICTS}
    not_count = {v: sum(r["verdict"] == v for r in unanswerable) for v in UNANSWERABLE_VERDICTS}
    shown = [r for r in answerable if r["verdict"] != "declined"]
    file_checked = [r for r in shown if r.get("file_cited") is not None]
    page_checked = [r for r in shown if r.get("page_cited") is not None]
    return {
        "questions": len(rows),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        **count,
        **{f"{v}_unanswerable": n for v, n in not_count.items()},
        "right_or_quote_holds": _share(count["right"] + count["quote_holds"], len(answerable)),
        "wrong_shown": _share(count["wrong"], len(answerable)),
        "answerable_declined": _share(count["declined"], len(answerable)),
        "unanswerable_declined": _share(not_count["declined"], len(unanswerable)),
        "cited_file": _share(sum(bool(r["file_cited"]) for r in file_checked), len(file_checked)),
        "cited_page": _share(sum(bool(r["page_cited"]) for r in page_checked), len(page_checked)),
    }


def seconds_summary(seconds: Sequence[float]) -> dict[str, float | None]:
    """Median and 95th percentile (nearest rank below) of the seconds per answer."""
    if not seconds:
        return {"s_median": None, "s_p95": None}
    ordered = sorted(seconds)
    return {
        "s_median": round(statistics.median(ordered), 2),
        "s_p95": round(ordered[int(0.95 * (len(ordered) - 1))], 2),
    }


def targets_met(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target beside the figure it constrains (``met`` None when the figure has no questions)."""
    out = []
    for figure, op, target in TARGETS:
        value = summary.get(figure)
        met = None if value is None else (value >= target if op == ">=" else value <= target)
        out.append({"figure": figure, "value": value, "target": f"{op} {target:.2f}", "met": met})
    return out


def aggregate(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Totals, per kind and per doc set (each a :func:`summarise`), the targets and the timing."""

    def by(field: str) -> dict[str, dict[str, Any]]:
        groups: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            groups.setdefault(r[field], []).append(r)
        return {name: summarise(group) for name, group in sorted(groups.items())}

    total = summarise(rows)
    return {
        "total": total,
        "targets": targets_met(total),
        "by_kind": by("kind"),
        "by_doc_set": by("doc_set"),
        **seconds_summary([r["seconds"] for r in rows if r.get("seconds") is not None]),
    }
