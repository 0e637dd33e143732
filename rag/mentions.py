"""Names a question asks about that the documents never mention.

A question about a thing the collection never names ("Can borg back up into an Amazon S3 bucket?", "How do I
plot a Parquet file?") cannot be answered from it, however on topic the rest of its words are: retrieval
still finds the collection's pages about backups or plotting, and any answer drawn from them is about
something else. Those are the on-topic unanswerable questions the answerability model, fitted on questions
about other articles altogether, lets through. So before retrieval, the question's *names* (a capitalised
word after the first, an acronym, an identifier with a digit or an underscore, a quoted term) are looked up
in the collection's vocabulary (its BM25 terms, stemmed as the documents were); a name found nowhere, not
even as a near spelling (a user's typo: "Maastrich" for "Maastricht"), declines the question and the
reply says which name the documents lack. Ordinary words are never looked up: a question may use a word
the manual does not ("How deep can trigger recursion go?") and still be answered by it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterator

from rag.lexical import Vocabulary, tokenize

_WORD = re.compile(r"[A-Za-z0-9_][\w.+#-]*")
_QUOTED = re.compile(r"[\"'`\u2018\u201c]([^\"'`\u2019\u201d]{2,40})[\"'`\u2019\u201d]")
_NUMBER = re.compile(r"^[\d.,:/+-]+$")  # a value ("1647", "3.5"), not a name
MIN_NAME_CHARS = 2


def names(question: str) -> list[str]:
    """The words of ``question`` that name something (module docstring), in order, without repeats."""
    out: list[str] = []
    for m in _QUOTED.finditer(question):
        out.extend(w.group() for w in _WORD.finditer(m.group(1)))
    for i, m in enumerate(_WORD.finditer(question)):
        word = m.group().rstrip(".-")  # a possessive stops at its apostrophe: "Warsaw's" is "Warsaw"
        if len(word) < MIN_NAME_CHARS or _NUMBER.match(word):
            continue
        acronym = sum(c.isupper() for c in word) >= 2
        capitalised = word[0].isupper() and i > 0
        identifier = bool(re.search(r"[\d_]", word)) and bool(re.search(r"[A-Za-z]", word))
        if acronym or capitalised or identifier:
            out.append(word)
    return list(dict.fromkeys(w for w in out if not _NUMBER.match(w)))


def _near(term: str, vocabulary: Vocabulary) -> bool:
    """Whether ``vocabulary`` holds a near spelling of ``term`` (one edit for short terms, two for long)."""
    if len(term) < 5:
        return False
    budget = 1 if len(term) < 8 else 2
    cutoff = 1 - (budget + 0.5) / len(term)
    return bool(difflib.get_close_matches(term, vocabulary.alike(term, budget), n=1, cutoff=cutoff))


def unmentioned(question: str, vocabulary: Collection[str]) -> list[str]:
    """The names of ``question`` whose every term is absent from ``vocabulary``, near spellings included."""
    terms = vocabulary if isinstance(vocabulary, Vocabulary) else Vocabulary(vocabulary)
    return list(_missing(question, terms))


def _missing(question: str, vocabulary: Vocabulary) -> Iterator[str]:
    for name in names(question):
        terms = tokenize(name)
        if terms and not any(t in vocabulary or _near(t, vocabulary) for t in terms):
            yield name
