"""Names a question asks about that the documents never mention (rag/mentions.py)."""

from __future__ import annotations

from rag.lexical import Vocabulary, tokenize
from rag.mentions import names, unmentioned

VOCABULARY = set(tokenize("borg creates archives in a repository over ssh; Maastricht treaty; SQLITE_MAX_LENGTH"))


def test_names_are_capitalised_words_after_the_first_acronyms_identifiers_and_quoted_terms() -> None:
    assert names("Can borg back up into an Amazon S3 bucket?") == ["Amazon", "S3"]
    assert names("What is the default value of SQLITE_MAX_MMAP_SIZE?") == ["SQLITE_MAX_MMAP_SIZE"]
    assert names('What does the "prune" command keep?') == ["prune"]
    # The first word, ordinary words and numbers name nothing; a possessive is the name.
    assert names("How deep can trigger recursion go in 1998 or 3.5?") == []
    assert names("What is Warsaw's oldest bridge?") == ["Warsaw"]


def test_a_name_the_vocabulary_lacks_is_unmentioned_unless_a_near_spelling_is_there() -> None:
    assert unmentioned("Can borg back up into an Amazon S3 bucket?", VOCABULARY) == ["Amazon", "S3"]
    assert unmentioned("Does borg work over SSH?", VOCABULARY) == []
    assert unmentioned("When was the Maastrich treaty signed?", VOCABULARY) == []  # a typo of a known name
    assert unmentioned("What is SQLITE_MAX_LENGTH?", VOCABULARY) == []
    assert unmentioned("How deep can trigger recursion go?", VOCABULARY) == []  # ordinary words: never looked up


def test_near_spellings_are_looked_for_among_terms_of_the_same_first_letter_and_about_the_same_length() -> None:
    vocabulary = Vocabulary({"maastricht", "maastrichter", "mast", "treaty", "zmaastricht"})
    assert sorted(vocabulary.alike("maastrich", 2)) == ["maastricht"]  # 7 to 11 letters, starting with m
    assert "treaty" in vocabulary and "treati" not in vocabulary and len(vocabulary) == 5
    assert unmentioned("When was the Maastrich treaty signed?", vocabulary) == []
    assert unmentioned("When was the Zastrich treaty signed?", vocabulary) == ["Zastrich"]
