"""The question/answer pair every training-set input becomes, and the error for a bad input file.

Kept apart so that ``finetune.data`` (which reads Q/A and feedback files and composes examples) and
``finetune.synthetic`` (which makes pairs with the served model) both build on it without importing each
other: ``data`` -> ``synthetic`` -> ``items``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rag.errors import DocqaError


class DatasetError(DocqaError):
    """A Q/A, feedback or dataset file is missing or malformed."""


@dataclass
class QAItem:
    """One question with its reference answer, before retrieval. ``source`` names the gold document
    (a path, or a file name that ends one); ``group`` overrides the split unit (SQuAD: the article)."""

    question: str
    answer: str
    answers: list[str] = field(default_factory=list)  # every acceptable answer (SQuAD has several)
    source: str | None = None
    page: int | None = None
    group: str | None = None
    origin: str = "qa"  # qa | feedback | synthetic
    gold_text: str | None = None  # the passage a feedback citation showed, to find its chunk

    def __post_init__(self) -> None:
        if not self.answers:
            self.answers = [self.answer]
