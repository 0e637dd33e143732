"""Sentence boundaries: where a cut would lose the answer, there is none."""

from __future__ import annotations

import pytest

from rag.sentences import sentence_spans, split_sentences


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "It was challenged by British bacteriologist J. F. D. Shrewsbury in 1970. Others followed.",
            ["It was challenged by British bacteriologist J. F. D. Shrewsbury in 1970.", "Others followed."],
        ),
        (
            "The factorial (p − 1)! + 1 is divisible by p. Wilson proved it.",
            ["The factorial (p − 1)! + 1 is divisible by p.", "Wilson proved it."],
        ),
        ("Use e.g. a fuse. The U.S. Army won.", ["Use e.g. a fuse.", "The U.S. Army won."]),
        ("Dr. Smith costs approx. 40 euros. See Fig. 3 now.", ["Dr. Smith costs approx. 40 euros.", "See Fig. 3 now."]),
        ('He said "Stop." Then he left. Is it? Yes!', ['He said "Stop."', "Then he left.", "Is it?", "Yes!"]),
        ("Row one\n\nRow two\nRow three", ["Row one", "Row two", "Row three"]),
        ("Version 2.5 ships today. It costs 3.99.", ["Version 2.5 ships today.", "It costs 3.99."]),
        ("It takes 15 minutes. <b>bold</b> - next", ["It takes 15 minutes.", "<b>bold</b> - next"]),
        (  # a table row as ingest writes it is one unit, whatever its cells hold
            "They compare as follows:\nModel | Note\nModel: X2 | Note: Fast. Rated 20 C.\nModel: X3 | Note: Slow.",
            [
                "They compare as follows:",
                "Model | Note",
                "Model: X2 | Note: Fast. Rated 20 C.",
                "Model: X3 | Note: Slow.",
            ],
        ),
        (  # a page reference does not end the sentence; "p." before a word still may
            "See set samples (p. 195). It is divisible by p. Then more.",
            ["See set samples (p. 195).", "It is divisible by p.", "Then more."],
        ),
        ("Pipe a | bc. Then more. Key: value. Next one.", ["Pipe a | bc.", "Then more.", "Key: value.", "Next one."]),
    ],
)
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


def test_spans_index_the_text_and_drop_short_units() -> None:
    text = "  1.\nThe warranty lasts two years.  It covers parts. \n"
    spans = sentence_spans(text, min_chars=3)
    assert [text[a:b] for a, b in spans] == ["The warranty lasts two years.", "It covers parts."]
