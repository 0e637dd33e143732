"""Prompt assembly, citation mapping and the refusal path, with a scripted generator."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.pipeline import AnswerPipeline
from rag.prompting import (
    DECLINE_TEXT,
    Passage,
    build_messages,
    build_passages,
    fit_passages,
    map_citations,
    sane_rewrite,
)
from rag.services import Services
from rag.types import Hit, StoredChunk


def chunk(cid: int, text: str, *, ordinal: int = 0, page: int | None = 1, doc: str = "h1") -> StoredChunk:
    return StoredChunk(cid, doc, ordinal, text, page, page, "Warranty", "NarrativeText", [f"/kb/{doc}.pdf"], "pdf")


def passages() -> list[Passage]:
    return build_passages(
        [
            Hit(chunk(1, "The warranty lasts 24 months from the date of purchase.", doc="manual"), 0.9),
            Hit(chunk(2, "Returns are accepted within 30 days with the receipt.", doc="policy", page=None), 0.8),
        ]
    )


class TestMessages:
    def test_sources_are_numbered_before_the_question_with_file_and_page(self) -> None:
        messages = build_messages("How long is the warranty?", passages())
        assert messages[0]["role"] == "system" and "[1]" in messages[0]["content"]
        user = messages[-1]["content"]
        assert user.index("[1] (manual.pdf, page 1") < user.index("[2] (policy.pdf, section") < user.index("Question:")
        assert user.rstrip().endswith("How long is the warranty?")

    def test_history_goes_between_system_and_sources(self) -> None:
        history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
        roles = [m["role"] for m in build_messages("q", passages(), history)]
        assert roles == ["system", "user", "assistant", "user"]

    def test_adjacent_hits_of_one_page_merge_into_one_passage(self) -> None:
        hits = [
            Hit(chunk(5, "second part", ordinal=5), 0.9),
            Hit(chunk(9, "elsewhere", ordinal=9), 0.8),
            Hit(chunk(4, "first part", ordinal=4), 0.7),
            Hit(chunk(6, "next page", ordinal=6, page=2), 0.6),
        ]
        merged = build_passages(hits)
        assert [p.n for p in merged] == [1, 2, 3]
        assert merged[0].text == "first part\nsecond part"
        assert [p.page for p in merged] == [1, 1, 2]
        assert len(build_passages(hits, merge_adjacent=False)) == 4

    def test_fit_keeps_best_passages_within_the_token_budget(self) -> None:
        def words(text: str) -> int:
            return len(text.split())

        many = build_passages([Hit(chunk(i, "word " * 50, ordinal=i * 10, doc=f"d{i}"), 1 - i / 10) for i in range(6)])
        kept = fit_passages(many, words, budget=130)
        assert [p.n for p in kept] == [1, 2]
        huge = build_passages([Hit(chunk(1, "word " * 1000), 1.0)])
        (only,) = fit_passages(huge, words, budget=100)
        assert words(only.text) <= 90


class TestCitations:
    def test_markers_map_to_source_and_page(self) -> None:
        text, cites, dropped = map_citations("The warranty lasts 24 months [1].", passages())
        assert text == "The warranty lasts 24 months [1]."
        assert [(c.n, Path(c.source).name, c.page) for c in cites] == [(1, "manual.pdf", 1)]
        assert dropped == 0

    def test_unknown_markers_are_dropped_and_counted(self) -> None:
        text, cites, dropped = map_citations("Returns within 30 days [2][7]. Also [9].", passages())
        assert "[7]" not in text and "[9]" not in text and "[2]" in text
        assert [c.n for c in cites] == [2] and dropped == 2

    def test_grouped_markers(self) -> None:
        _, cites, _ = map_citations("Both apply [1, 2].", passages())
        assert [c.n for c in cites] == [1, 2]

    def test_uncited_sentence_is_attributed_by_overlap(self) -> None:
        text, cites, _ = map_citations("Returns are accepted within 30 days.", passages())
        assert text.endswith("[2].") and [c.n for c in cites] == [2]

    def test_unsupported_sentence_gets_no_citation(self) -> None:
        _, cites, _ = map_citations("Penguins live in Antarctica.", passages())
        assert cites == []

    def test_decline_is_not_attributed(self) -> None:
        _, cites, _ = map_citations(DECLINE_TEXT, passages())
        assert cites == []


def test_rewrite_falls_back_to_previous_question() -> None:
    history = [{"role": "user", "content": "How long is the warranty?"}, {"role": "assistant", "content": "24 months"}]
    assert sane_rewrite("Does the warranty cover batteries?", "and batteries?", history) == (
        "Does the warranty cover batteries?"
    )
    assert sane_rewrite("", "and batteries?", history) == "How long is the warranty? and batteries?"


class ScriptedGenerator:
    """Returns a fixed reply and records what it was sent (unit tests only)."""

    def __init__(self, reply: str, *later: str) -> None:
        self.replies = [reply, *later]  # one per call; the last repeats
        self.calls: list[list[dict]] = []

    @property
    def reply(self) -> str:
        return self.replies[min(len(self.calls), len(self.replies)) - 1]

    def chat(self, messages: list[dict], **_: object) -> str:
        self.calls.append(messages)
        return self.reply

    def stream(self, messages: list[dict], **_: object) -> Iterator[str]:
        self.calls.append(messages)
        yield from re.findall(r"\S+\s*", self.reply)  # word by word, as a server streams

    def models(self) -> list[str]:
        return ["docqa-base"]

    def check(self) -> None:
        return None


class TestPipeline:
    def _ingest(self, services: Services, tmp_path: Path) -> None:
        kb = tmp_path / "kb"
        kb.mkdir(parents=True)
        (kb / "warranty.md").write_text("# Warranty\n\nThe Tidy robot warranty lasts 24 months from purchase.\n")
        (kb / "returns.md").write_text("# Returns\n\nReturns are accepted within 30 days with a receipt.\n")
        services.ingestor.ingest([kb], "kb")

    def _pipeline(
        self, services: Services, tmp_path: Path, reply: str, *later: str, **settings: object
    ) -> tuple[AnswerPipeline, ScriptedGenerator]:
        self._ingest(services, tmp_path)
        gen = ScriptedGenerator(reply, *later)
        configured = services.settings.with_overrides(**settings) if settings else services.settings
        return Services(configured, embedder=services.embedder, generator=gen).pipeline, gen

    def test_supported_answer_is_shown_with_its_evidence(self, services: Services, tmp_path: Path) -> None:
        pipeline, gen = self._pipeline(services, tmp_path, "The warranty lasts 24 months [1].")
        events = list(pipeline.stream("How long is the warranty?", collection="kb"))
        assert next(e["event"] for e in events) == "sources"
        # verify mode: the answer is checked before it is shown, so it arrives whole, never half-checked.
        assert [e["text"] for e in events if e["event"] == "token"] == ["The warranty lasts 24 months [1]."]
        answer = events[-1]["answer"]
        assert answer.grounded is True and answer.mode == "generate" and not answer.declined
        assert Path(answer.citations[0].source).name == "warranty.md"
        assert "24 months" in gen.calls[-1][-1]["content"]  # the passage reached the prompt
        best = answer.evidence[0]
        assert "24 months" in best.text and best.n == 1 and Path(best.source).name == "warranty.md"
        chunk = pipeline.services.reader("kb").docstore.chunks([best.chunk_id])[best.chunk_id]
        assert chunk.text[best.start : best.end] == best.text  # offsets into the chunk's stored text

    def test_unsupported_answer_is_replaced_by_the_evidence_quote(self, services: Services, tmp_path: Path) -> None:
        pipeline, _ = self._pipeline(services, tmp_path, "The warranty lasts 36 months [1].")
        answer = pipeline.ask("How long is the warranty?", collection="kb")
        assert answer.mode == "quote" and answer.grounded is False
        assert "36" not in answer.answer and "24 months" in answer.answer
        assert answer.answer.startswith("From warranty.md") and answer.answer.endswith("[1]")
        assert answer.generated and "36 months" in answer.generated  # kept for the logs, not shown
        assert answer.checks and not answer.checks[0].supported

    def test_generate_mode_streams_the_model_as_it_comes(self, services: Services, tmp_path: Path) -> None:
        pipeline, _ = self._pipeline(services, tmp_path, "The warranty lasts 36 months [1].", answer__mode="generate")
        events = list(pipeline.stream("How long is the warranty?", collection="kb"))
        assert sum(e["event"] == "token" for e in events) > 1
        answer = events[-1]["answer"]
        assert "36 months" in answer.answer and answer.mode == "generate" and answer.grounded is False

    def test_quote_mode_does_not_ask_the_model(self, services: Services, tmp_path: Path) -> None:
        pipeline, gen = self._pipeline(services, tmp_path, "unused", answer__mode="quote")
        answer = pipeline.ask("How long is the warranty?", collection="kb")
        assert gen.calls == [] and answer.mode == "quote" and "24 months" in answer.answer
        assert answer.evidence and answer.citations[0].n == 1

    def test_a_decline_despite_sure_retrieval_becomes_the_quote(self, services: Services, tmp_path: Path) -> None:
        pipeline, _ = self._pipeline(services, tmp_path, DECLINE_TEXT, answer__quote_over_decline=0.0)
        answer = pipeline.ask("How long is the warranty?", collection="kb")
        assert not answer.declined and answer.mode == "quote" and "24 months" in answer.answer
        pipeline, _ = self._pipeline(services, tmp_path / "b", DECLINE_TEXT, answer__quote_over_decline=1.0)
        assert pipeline.ask("How long is the warranty?", collection="kb").declined

    @pytest.mark.parametrize("first", [DECLINE_TEXT, "The warranty lasts 36 months [1]."])
    def test_a_focused_second_draft_is_shown_when_it_passes(
        self, first: str, services: Services, tmp_path: Path
    ) -> None:
        """The model declined (with retrieval sure) or wrote an unsupported claim: a second draft from the
        best evidence's passage alone is shown when it passes verification."""
        second = "The warranty lasts 24 months [1]."
        on = {"answer__quote_over_decline": 0.0, "answer__focused_retry": True}
        pipeline, gen = self._pipeline(services, tmp_path, first, second, **on)
        answer = pipeline.ask("How long is the warranty?", collection="kb")
        assert len(gen.calls) == 2 and answer.retried and answer.mode == "generate" and answer.grounded
        assert answer.answer == second and Path(answer.citations[0].source).name == "warranty.md"
        focused = gen.calls[1][-1]["content"]
        assert "24 months" in focused and "30 days" not in focused  # the best passage alone
        # Off (the default), or the second draft failing too: the quote, as before.
        pipeline, gen = self._pipeline(services, tmp_path / "off", first, second, answer__quote_over_decline=0.0)
        off = pipeline.ask("How long is the warranty?", collection="kb")
        assert len(gen.calls) == 1 and off.mode == "quote" and not off.retried
        pipeline, gen = self._pipeline(services, tmp_path / "bad", first, **on)
        bad = pipeline.ask("How long is the warranty?", collection="kb")
        assert len(gen.calls) == 2 and bad.mode == "quote" and "36" not in bad.answer

    def test_a_span_from_a_sentence_about_something_else_is_not_shown(
        self, services: Services, tmp_path: Path
    ) -> None:
        kb = tmp_path / "kb"
        kb.mkdir(parents=True)
        (kb / "stores.md").write_text(
            "# Shopping\n\nJohn Lewis opened its Newcastle shop in 1864. The Grainger Market has 120 stalls. "
            "Bainbridge's is thought to be the first department store in the world.\n"
        )
        question = "Which department store is thought to be the first in the world?"
        for reply, shown in (("John Lewis [1].", False), ("Bainbridge's [1].", True)):
            gen = ScriptedGenerator(reply)
            settings = services.settings.with_overrides(answer__span_sentences=1)
            pipeline = Services(settings, embedder=services.embedder, generator=gen).pipeline
            if not services.collections():
                services.ingestor.ingest([kb], "kb")
            answer = pipeline.ask(question, collection="kb")
            assert (answer.mode == "generate") is shown, (reply, answer.answer, answer.checks)
            if not shown:
                assert "Bainbridge" in answer.answer and "not in the sentences about the question" in str(answer.checks)

    def test_loading_the_embedder_is_timed_apart_from_retrieval(self, services: Services, tmp_path: Path) -> None:
        from rag.embedder import SentenceTransformerEmbedder

        self._ingest(services, tmp_path)
        fresh = SentenceTransformerEmbedder(services.settings.embedder)  # not loaded yet, as in a new process
        pipeline = Services(services.settings, embedder=fresh, generator=ScriptedGenerator("24 months [1].")).pipeline
        first = pipeline.ask("How long is the warranty?", collection="kb")
        second = pipeline.ask("How long is the warranty?", collection="kb")
        assert first.as_json()["load_ms"] > 0.0 and second.as_json()["load_ms"] == 0.0  # rounded to 0.1 ms

    def test_invented_source_header_is_stripped(self, services: Services, tmp_path: Path) -> None:
        reply = "The warranty lasts 24 months (warranty.md, page 7) [1]."
        pipeline, _ = self._pipeline(services, tmp_path, reply)
        answer = pipeline.ask("How long is the warranty?", collection="kb")
        assert "page 7" not in answer.answer and "24 months" in answer.answer and answer.grounded

    def test_decline_is_the_same_in_a_later_turn(self, services: Services, tmp_path: Path) -> None:
        question = "Who won the 1998 football world cup final?"
        pipeline, gen = self._pipeline(services, tmp_path, question)  # the rewrite keeps the question
        first = pipeline.ask(question, collection="kb")
        history = [
            {"role": "user", "content": "How long is the warranty?"},
            {"role": "assistant", "content": "24 months"},
        ]
        later = pipeline.ask(question, collection="kb", history=history)
        assert first.declined and later.declined and first.answerable == later.answerable
        assert len(gen.calls) == 1  # the condensing call only: the model never answered

    def test_irrelevant_question_is_declined_without_calling_the_model(
        self, services: Services, tmp_path: Path
    ) -> None:
        self._ingest(services, tmp_path)
        gen = ScriptedGenerator("should not be used")
        services = Services(services.settings, embedder=services.embedder, generator=gen)
        answer = services.pipeline.ask("Who won the 1998 football world cup final?", collection="kb")
        assert answer.declined and answer.answer == DECLINE_TEXT and answer.citations == []
        assert gen.calls == []

    def test_follow_up_is_condensed_before_retrieval(self, services: Services, tmp_path: Path) -> None:
        self._ingest(services, tmp_path)
        gen = ScriptedGenerator("Within how many days are returns accepted?")
        services = Services(services.settings, embedder=services.embedder, generator=gen)
        history = [{"role": "user", "content": "Tell me about the robot"}, {"role": "assistant", "content": "It is"}]
        answer = services.pipeline.ask("and returns?", collection="kb", history=history)
        assert answer.standalone_question == "Within how many days are returns accepted?"
        assert Path(answer.passages[0].source).name == "returns.md"
