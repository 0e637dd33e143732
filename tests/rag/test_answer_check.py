"""The learned answer check: its input form, the shipped weights on real pairs, and how the answer policy uses
it (a scripted checker stands in for the model where the policy, not the model, is under test)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from docqa.services import Services
from rag.answer_check import CrossEncoderCheck, sentence_pair
from rag.embedder import resolve_embedder_path
from rag.errors import ConfigError
from rag.pipeline import AnswerPipeline
from rag.settings import BUNDLED_EMBEDDER
from rag.types import Question
from tests.rag.test_pipeline import ScriptedGenerator

WARRANTY = Question("How long is the warranty?", "kb")


def test_the_pair_is_question_then_sentence() -> None:
    assert sentence_pair(" How long? ", " It lasts 24 months. ") == ("How long?", "It lasts 24 months.")


@pytest.fixture(scope="module")
def check() -> CrossEncoderCheck:
    c = CrossEncoderCheck("bundled", resolve_embedder_path(BUNDLED_EMBEDDER))
    c.warm_up()
    c.warm_up()  # safe twice
    return c


class TestShippedWeights:
    """The shipped check on pairs written here (not from its training data): each assertion fails for a check
    that does not read the question with the candidate (random or untrained weights score near 0.5 for all)."""

    def test_the_sentence_that_answers_beats_its_neighbours(self, check: CrossEncoderCheck) -> None:
        q = "What is the maximum number of connections the server accepts?"
        sentences = [
            "The server accepts at most 500 concurrent connections.",
            "The limits are shown in the table below.",
            "Connections are logged to the access log.",
        ]
        p = check.sentences(q, sentences)
        assert p.shape == (3,) and p[0] > 0.5 and p[0] > p[1] + 0.2 and p[0] > p[2] + 0.2

    def test_the_reader_prefers_the_value_the_question_asks_for(self, check: CrossEncoderCheck) -> None:
        q = "In which year was the company founded?"
        sentence = "The company was founded in 1998 by two engineers and moved to Berlin in 2004."
        p = check.spans(q, [("1998", sentence), ("2004", sentence), ("Berlin", sentence), ("absent", sentence)])
        assert p[0] > p[1] and p[0] > p[2] and p[3] == 0.0
        span, holds = check.read(q, sentence)
        assert span.startswith("1998") and holds > 0.5

    def test_scores_are_probabilities_and_empty_input_is_empty(self, check: CrossEncoderCheck) -> None:
        p = check.sentences("Who?", ["Alice wrote it."] * 40)  # more than one batch
        assert p.shape == (40,) and np.all((p >= 0) & (p <= 1)) and np.allclose(p, p[0], atol=1e-5)
        assert check.spans("Who?", []).shape == (0,)


def test_missing_weights_name_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="DOCQA_CHECK_MODEL"):
        CrossEncoderCheck(str(tmp_path), resolve_embedder_path(BUNDLED_EMBEDDER)).warm_up()


class ScriptedCheck:
    """Probabilities by substring: the first key found in a candidate decides (unit tests of the policy)."""

    def __init__(self, sentences: dict[str, float], spans: dict[str, float], default: float = 0.0) -> None:
        self.by_sentence, self.by_span, self.default = sentences, spans, default
        self.asked: list[str] = []

    def warm_up(self) -> None:
        return None

    def _look(self, table: dict[str, float], text: str) -> float:
        self.asked.append(text)
        return next((p for key, p in table.items() if key in text), self.default)

    def sentences(self, question: str, sentences: Sequence[str]) -> np.ndarray:
        return np.array([self._look(self.by_sentence, s) for s in sentences], dtype=np.float32)

    def spans(self, question: str, candidates: Sequence[tuple[str, str]]) -> np.ndarray:
        return np.array([self._look(self.by_span, span) for span, _ in candidates], dtype=np.float32)


class TestPolicy:
    def _pipeline(self, services: Services, tmp_path: Path, check: ScriptedCheck, *replies: str, **settings: object):
        kb = tmp_path / "kb"
        kb.mkdir(parents=True)
        (kb / "warranty.md").write_text(
            "# Warranty\n\nWarranty terms are listed below.\n\nThe Tidy robot warranty lasts 24 months from "
            "purchase. The battery is covered for 6 months.\n"
        )
        (kb / "returns.md").write_text("# Returns\n\nReturns are accepted within 30 days with a receipt.\n")
        services.ingestor.ingest([kb], "kb")
        gen = ScriptedGenerator(*replies)
        configured = services.settings.with_overrides(answer__alternatives=0, **settings)
        pipeline = Services(configured, embedder=services.embedder, generator=gen).pipeline
        pipeline.checker = check
        return pipeline, gen

    def test_on_topic_question_no_sentence_answers_is_declined_without_the_model(
        self, services: Services, tmp_path: Path
    ) -> None:
        check = ScriptedCheck({}, {}, default=0.01)
        pipeline, gen = self._pipeline(services, tmp_path, check, "The warranty lasts 24 months [1].")
        answer = pipeline.ask(WARRANTY)
        assert answer.declined and gen.calls == [] and answer.checked == pytest.approx(0.01)
        # The same question where a sentence answers: the model is asked and its answer shown.
        check = ScriptedCheck({"24 months": 0.9}, {"24 months": 0.9}, default=0.01)
        pipeline, gen = self._pipeline(services, tmp_path / "b", check, "The warranty lasts 24 months [1].")
        answer = pipeline.ask(WARRANTY)
        assert not answer.declined and answer.mode == "generate" and answer.checked == pytest.approx(0.9)

    def test_the_quote_is_the_sentence_the_check_prefers(self, services: Services, tmp_path: Path) -> None:
        # "listed below" points elsewhere: the ranker may like it (it shares "warranty"), the check does not.
        check = ScriptedCheck({"24 months": 0.8, "listed below": 0.1}, {}, default=0.2)
        pipeline, _ = self._pipeline(services, tmp_path, check, "unused", answer__mode="quote")
        answer = pipeline.ask(WARRANTY)
        assert answer.mode == "quote" and "24 months" in answer.answer and "below" not in answer.answer

    def test_a_supported_span_the_check_doubts_is_replaced_by_the_quote(
        self, services: Services, tmp_path: Path
    ) -> None:
        """The draft's words are in the cited passage (verification passes it); the check's low probability
        for its span alone turns it into the quote."""
        doubted = ScriptedCheck({"24 months": 0.9}, {"24 months": 0.05}, default=0.1)
        pipeline, _ = self._pipeline(services, tmp_path, doubted, "24 months [1].", answer__sentence_draft=False)
        answer = pipeline.ask(WARRANTY)
        assert answer.mode == "quote" and "24 months" in answer.answer and answer.generated == "24 months [1]."
        assert [p for c in answer.checks for p in c.problems] == [
            "the learned check doubts it answers the question (p=0.05)"
        ]
        trusted = ScriptedCheck({"24 months": 0.9}, {"24 months": 0.9}, default=0.1)
        pipeline, _ = self._pipeline(services, tmp_path / "b", trusted, "24 months [1].")
        answer = pipeline.ask(WARRANTY)
        assert answer.mode == "generate" and answer.answer == "24 months [1]." and answer.grounded

    def test_the_draft_from_the_quote_must_pass_the_check_too(self, services: Services, tmp_path: Path) -> None:
        spans = {"Tidy robot": 0.05, "24 months": 0.9}
        check = ScriptedCheck({"24 months": 0.9}, spans, default=0.1)
        on = {"answer__sentence_draft": True}
        pipeline, gen = self._pipeline(services, tmp_path, check, "The Tidy robot [1].", "24 months [1].", **on)
        answer = pipeline.ask(WARRANTY)
        assert len(gen.calls) == 2 and answer.retried and answer.answer == "24 months [1]."
        # The reply from the quote doubted as well: the quote.
        check = ScriptedCheck({"24 months": 0.9}, {"Tidy robot": 0.05, "24 months": 0.05}, default=0.1)
        pipeline, gen = self._pipeline(
            services, tmp_path / "b", check, "The Tidy robot [1].", "24 months [1].", **on
        )
        answer = pipeline.ask(WARRANTY)
        assert len(gen.calls) == 2 and answer.mode == "quote" and "24 months from purchase" in answer.answer

    def test_off_the_check_is_not_asked(self, services: Services, tmp_path: Path) -> None:
        check = ScriptedCheck({}, {}, default=0.0)  # would decline everything if it were asked
        kb = tmp_path / "kb"
        kb.mkdir(parents=True)
        (kb / "warranty.md").write_text("# Warranty\n\nThe Tidy robot warranty lasts 24 months from purchase.\n")
        (kb / "returns.md").write_text("# Returns\n\nReturns are accepted within 30 days with a receipt.\n")
        services.ingestor.ingest([kb], "kb")
        configured = services.settings.with_overrides(check__enabled=False)
        assert Services(configured, embedder=services.embedder).checker is None
        pipeline = AnswerPipeline(
            configured,
            retriever=services.retriever,
            generator=ScriptedGenerator("24 months [1]."),
            readers=services.reader,
            count_tokens=lambda text: len(text.split()),
            evidence=services.evidence,
            checker=check,
        )
        answer = pipeline.ask(WARRANTY)
        assert answer.answer == "24 months [1]." and answer.checked is None and check.asked == []
