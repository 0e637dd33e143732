"""Evidence: the sentences inside the retrieved passages that answer the question.

A passage is a few hundred words; the claim a user needs to check is one sentence of it. Each sentence
(or table row, or list line) of the passages is scored by a mix of three signals whose weights were
tuned on held-out SQuAD articles (``docqa eval grounding``): the embedder's cosine between question and
sentence, the share of the question's content words (Snowball stems, weighted by their rarity among
the candidate sentences) that the sentence holds, and the passage's own retrieval score. Once an answer
exists, the sentences that hold the answer's words are preferred, so the evidence shown is the sentence
the answer came from. Offsets are characters in the stored chunk text, so a UI can highlight the span.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from rag.embedder import VectorCache
from rag.lexical import tokenize
from rag.types import Evidence
from rag.units import MIN_UNIT_CHARS, points_elsewhere, unit_spans

if TYPE_CHECKING:
    from rag.embedder import Embedder
    from rag.prompting import Passage
    from rag.settings import EvidenceSettings


@dataclass
class Signals:
    """Per-sentence signals of one question against its passages."""

    units: list[Evidence]  # every candidate sentence, unscored (score 0)
    terms: list[list[str]]
    idf: dict[str, float]
    dense: np.ndarray  # cosine question-sentence
    lexical: np.ndarray  # idf-weighted question-word coverage
    passage: np.ndarray  # the passage's retrieval score, min-max normalised over the passages


@dataclass
class Ranked:
    """Candidate sentences best first, and the strongest question-sentence signals (for answerability)."""

    evidence: list[Evidence]
    best_dense: float
    best_lexical: float
    signals: Signals  # kept so the answer can re-rank without embedding again


def units_of(passages: Sequence[Passage], max_block_chars: int = 0) -> list[Evidence]:
    """Every candidate unit of the passages (a sentence, a short list or table whole, an item or row with
    its lead-in: ``rag.units``), as an unscored span of its chunk."""
    units = []
    for p in passages:
        for chunk in p.chunks:
            for a, b, lead in unit_spans(chunk.text, max_block_chars):
                text = chunk.text[a:b]
                if b - a >= MIN_UNIT_CHARS and not points_elsewhere(text):
                    units.append(Evidence(p.n, chunk.source, chunk.page, chunk.id, a, b, text, 0.0, lead))
    return units


def term_weights(texts: Sequence[list[str]]) -> dict[str, float]:
    """Inverse document frequency of each stem among the candidate sentences: rare words say more."""
    df: dict[str, int] = {}
    for terms in texts:
        for t in set(terms):
            df[t] = df.get(t, 0) + 1
    n = len(texts)
    return {t: math.log(1.0 + n / d) for t, d in df.items()}


def coverage(query_terms: Sequence[str], terms: set[str], idf: dict[str, float]) -> float:
    """The idf-weighted share of the query's terms present in ``terms`` (0..1)."""
    unique = set(query_terms)
    if not unique:
        return 0.0
    default = max(idf.values(), default=1.0)
    total = sum(idf.get(t, default) for t in unique)
    return sum(idf.get(t, default) for t in unique if t in terms) / total


class EvidenceSelector:
    """Scores the sentences of retrieved passages; cheap to build, uses the already loaded embedder."""

    def __init__(self, settings: EvidenceSettings, embedder: Embedder) -> None:
        self.settings = settings
        self.embedder = embedder
        self.unit_vectors = VectorCache(embedder.embed, settings.cache_units)

    def measure(self, question: str, passages: Sequence[Passage]) -> Signals:
        """The per-sentence signals; weighting them is cheap, so tuning re-weights without re-embedding."""
        units = units_of(passages, self.settings.max_block_chars)
        terms = [tokenize(u.shown) for u in units]
        idf = term_weights(terms)
        q_terms = tokenize(question)
        lexical = np.array([coverage(q_terms, set(t), idf) for t in terms], dtype=np.float32)
        if units:
            dense = self.unit_vectors([u.shown for u in units]) @ self.embedder.embed_query(question)
        else:
            dense = np.zeros(0, dtype=np.float32)
        retrieval_score = {p.n: p.score for p in passages}
        pscores = np.array([retrieval_score[u.n] for u in units], dtype=np.float32)
        span = float(pscores.max() - pscores.min()) if units else 0.0
        passage = (pscores - pscores.min()) / span if span > 0 else np.ones_like(pscores)
        return Signals(units, terms, idf, np.asarray(dense, dtype=np.float32), lexical, passage)

    def rank(
        self,
        question: str,
        passages: Sequence[Passage],
        answer: str | None = None,
        *,
        signals: Signals | None = None,
        only: set[int] | None = None,
    ) -> Ranked:
        """Every candidate sentence (of the passages numbered in ``only``, if given), best first, with the
        best question-sentence signals. ``signals`` from an earlier ``rank`` of the same question and
        passages saves embedding the sentences again."""
        sig = signals if signals is not None else self.measure(question, passages)
        if not sig.units:
            return Ranked([], 0.0, 0.0, sig)
        s = self.settings
        scores = s.dense_weight * sig.dense + s.lexical_weight * sig.lexical + s.passage_weight * sig.passage
        a_terms = tokenize(answer) if answer else []
        if a_terms:
            support = np.array([coverage(a_terms, set(t), sig.idf) for t in sig.terms], dtype=np.float32)
            scores = scores + s.answer_weight * support
        order = np.argsort(-scores, kind="stable")
        evidence = [
            replace(sig.units[i], score=float(scores[i])) for i in order if only is None or sig.units[i].n in only
        ]
        return Ranked(evidence, float(sig.dense.max()), float(sig.lexical.max()), sig)
