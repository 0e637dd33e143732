"""The learned check's training pairs: what each label means (no training here; `make answer-check` trains)."""

from __future__ import annotations

import random

from finetune.answer_check import _token_span, pairs_for_article

ARTICLE = {
    "title": "Tidy",
    "paragraphs": [
        {
            "context": "The Tidy robot was launched in 2019. Its warranty lasts 24 months from purchase. "
            "The battery is covered for 6 months.",
            "qas": [
                {
                    "id": "q1",
                    "question": "How long is the robot's warranty?",
                    "answers": [{"text": "24 months", "answer_start": 56}],
                }
            ],
        },
        {
            "context": "Spare parts for the Tidy robot ship within 3 days. The warranty card lists the dealer.",
            "qas": [],
        },
    ],
}


def test_the_gold_sentence_is_the_positive_and_knows_where_the_answer_stands() -> None:
    assert ARTICLE["paragraphs"][0]["context"][56:65] == "24 months"
    pairs = pairs_for_article(ARTICLE, random.Random(0))
    positives = [p for p in pairs if p.label]
    assert len(positives) == 1
    (gold,) = positives
    assert gold.b == "Its warranty lasts 24 months from purchase."
    a, b = gold.answer
    assert gold.b[a:b] == "24 months"


def test_negatives_are_on_topic_sentences_without_the_answer() -> None:
    negatives = [p for p in pairs_for_article(ARTICLE, random.Random(0)) if not p.label]
    texts = {p.b for p in negatives}
    # Two of its own paragraph and two of the article's other paragraphs; none holds "24 months".
    assert "The battery is covered for 6 months." in texts
    assert "The warranty card lists the dealer." in texts
    assert len(negatives) == 4 and all("24 months" not in t for t in texts)
    assert all(p.answer is None for p in negatives)


def test_token_span_covers_the_answer_in_the_sentence_segment() -> None:
    # [CLS] q q [SEP] its warranty lasts 24 months [SEP], with character offsets in the sentence.
    sequence_ids = [None, 0, 0, None, 1, 1, 1, 1, 1, None]
    offsets = [(0, 0), (0, 3), (4, 8), (0, 0), (0, 3), (4, 12), (13, 18), (19, 21), (22, 28), (0, 0)]
    assert _token_span(offsets, sequence_ids, (19, 28)) == (7, 8)
    assert _token_span(offsets, sequence_ids, None) is None
    assert _token_span(offsets, sequence_ids, (40, 45)) is None  # cut off by truncation
