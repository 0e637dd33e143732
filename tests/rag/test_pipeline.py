"""The answer pipeline with a scripted generator: what is shown (the model's answer, the evidence quoted, a
decline), follow-ups, and the collaborators it is handed (one reader lookup per question)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from docqa.services import Services
from rag.errors import GenerationError
from rag.pipeline import AnswerPipeline, answering_first
from rag.prompting import DECLINE_TEXT
from rag.store import CollectionReader
from rag.types import Evidence, Question

WARRANTY = Question("How long is the warranty?", "kb")


class ScriptedGenerator:
    """Returns a fixed reply and records what it was sent (unit tests only)."""

    def __init__(self, reply: str, *later: str, alternatives: list[str] | None = None) -> None:
        self.replies = [reply, *later]  # one per call; the last repeats
        self.calls: list[list[dict]] = []
        self.others = alternatives or []
        self.alternative_calls: list[int] = []  # k of each alternatives() call

    @property
    def reply(self) -> str:
        return self.replies[min(len(self.calls), len(self.replies)) - 1]

    def chat(self, messages: list[dict], **_: object) -> str:
        self.calls.append(messages)
        return self.reply

    def stream(self, messages: list[dict], **_: object) -> Iterator[str]:
        self.calls.append(messages)
        yield from re.findall(r"\S+\s*", self.reply)  # word by word, as a server streams

    def alternatives(self, messages: list[dict], *, k: int = 3, **_: object) -> list[str]:
        self.alternative_calls.append(k)
        return self.others[:k]

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
        self,
        services: Services,
        tmp_path: Path,
        reply: str,
        *later: str,
        alternatives: list[str] | None = None,
        **settings: object,
    ) -> tuple[AnswerPipeline, ScriptedGenerator]:
        self._ingest(services, tmp_path)
        gen = ScriptedGenerator(reply, *later, alternatives=alternatives)
        configured = services.settings.with_overrides(**settings) if settings else services.settings
        return Services(configured, embedder=services.embedder, generator=gen).pipeline, gen

    def test_supported_answer_is_shown_with_its_evidence(self, services: Services, tmp_path: Path) -> None:
        pipeline, gen = self._pipeline(services, tmp_path, "The warranty lasts 24 months [1].")
        events = list(pipeline.stream(WARRANTY))
        assert next(e["event"] for e in events) == "sources"
        # verify mode: the answer is checked before it is shown, so it arrives whole, never half-checked.
        assert [e["text"] for e in events if e["event"] == "token"] == ["The warranty lasts 24 months [1]."]
        answer = events[-1]["answer"]
        assert answer.grounded is True and answer.mode == "generate" and not answer.declined
        assert Path(answer.citations[0].source).name == "warranty.md"
        assert "24 months" in gen.calls[-1][-1]["content"]  # the passage reached the prompt
        best = answer.evidence[0]
        assert "24 months" in best.text and best.n == 1 and Path(best.source).name == "warranty.md"
        chunk = services.reader("kb").chunks([best.chunk_id])[best.chunk_id]
        assert chunk.text[best.start : best.end] == best.text  # offsets into the chunk's stored text

    def test_unsupported_answer_is_replaced_by_the_evidence_quote(self, services: Services, tmp_path: Path) -> None:
        pipeline, _ = self._pipeline(services, tmp_path, "The warranty lasts 36 months [1].")
        answer = pipeline.ask(WARRANTY)
        assert answer.mode == "quote" and answer.grounded is False
        assert "36" not in answer.answer and "24 months" in answer.answer
        assert answer.answer.startswith("From warranty.md") and answer.answer.endswith("[1]")
        assert answer.generated and "36 months" in answer.generated  # kept for the logs, not shown
        assert answer.checks and not answer.checks[0].supported

    def test_the_passage_budget_bounds_the_sources_in_the_prompt(self, services: Services, tmp_path: Path) -> None:
        reply = "The warranty lasts 24 months [1]."
        whole, gen_whole = self._pipeline(services, tmp_path / "whole", reply)
        short, gen_short = self._pipeline(services, tmp_path / "short", reply, llm__passage_tokens=24)
        assert whole.ask(WARRANTY).grounded and short.ask(WARRANTY).grounded
        prompt_whole, prompt_short = gen_whole.calls[0][-1]["content"], gen_short.calls[0][-1]["content"]
        assert "[2]" in prompt_whole and "30 days" in prompt_whole  # the window holds both documents
        assert "[2]" not in prompt_short and "24 months" in prompt_short  # the one the evidence points to

    @pytest.mark.parametrize("reply", ["[1]", "[1] [2].", " [1][2] "])
    def test_a_reply_of_citation_markers_alone_is_no_answer(
        self, reply: str, services: Services, tmp_path: Path
    ) -> None:
        pipeline, _ = self._pipeline(services, tmp_path, reply)
        answer = pipeline.ask(WARRANTY)
        assert answer.grounded is False and answer.mode == "quote" and "24 months" in answer.answer
        assert any("citation markers alone" in p for c in answer.checks for p in c.problems)

    def test_generate_mode_streams_the_model_as_it_comes(self, services: Services, tmp_path: Path) -> None:
        pipeline, _ = self._pipeline(services, tmp_path, "The warranty lasts 36 months [1].", answer__mode="generate")
        events = list(pipeline.stream(WARRANTY))
        assert sum(e["event"] == "token" for e in events) > 1
        answer = events[-1]["answer"]
        assert "36 months" in answer.answer and answer.mode == "generate" and answer.grounded is False

    def test_quote_mode_does_not_ask_the_model(self, services: Services, tmp_path: Path) -> None:
        pipeline, gen = self._pipeline(services, tmp_path, "unused", answer__mode="quote")
        answer = pipeline.ask(WARRANTY)
        assert gen.calls == [] and answer.mode == "quote" and "24 months" in answer.answer
        assert answer.evidence and answer.citations[0].n == 1

    def test_a_decline_despite_sure_retrieval_becomes_the_quote(self, services: Services, tmp_path: Path) -> None:
        pipeline, _ = self._pipeline(services, tmp_path, DECLINE_TEXT, answer__quote_over_decline=0.0)
        answer = pipeline.ask(WARRANTY)
        assert not answer.declined and answer.mode == "quote" and "24 months" in answer.answer
        pipeline, _ = self._pipeline(services, tmp_path / "b", DECLINE_TEXT, answer__quote_over_decline=1.0)
        assert pipeline.ask(WARRANTY).declined

    @pytest.mark.parametrize("first", [DECLINE_TEXT, "The warranty covers the dock [1]."])
    def test_a_draft_from_the_quoted_sentence_alone_is_shown_when_it_is_a_checked_piece_of_it(
        self, first: str, services: Services, tmp_path: Path
    ) -> None:
        """The model declined (with retrieval sure) or wrote an unsupported claim: asked again with the sentence
        that would be quoted as its only source, its reply is shown when it passes verification and is a piece
        of that sentence; otherwise the quote, as before."""
        second = "24 months [1]."
        on = {"answer__quote_over_decline": 0.0, "answer__alternatives": 0, "answer__sentence_draft": True}
        pipeline, gen = self._pipeline(services, tmp_path, first, second, **on)
        answer = pipeline.ask(WARRANTY)
        assert len(gen.calls) == 2 and answer.retried and answer.mode == "generate" and answer.grounded
        assert answer.answer == second and Path(answer.citations[0].source).name == "warranty.md"
        sources = gen.calls[1][-1]["content"].split("Sources:\n", 1)[1].split("\n\nQuestion:")[0]
        assert sources.splitlines()[0].startswith("[1] (warranty.md")  # the sentence's file, numbered 1
        assert sources.splitlines()[1:] == ["The Tidy robot warranty lasts 24 months from purchase."]
        # Off (the default: one model call per answer), or a reply that is not a piece of the sentence (true,
        # but more than it says): the quote.
        off_settings = {**on, "answer__sentence_draft": False}
        pipeline, gen = self._pipeline(services, tmp_path / "off", first, second, **off_settings)
        off = pipeline.ask(WARRANTY)
        assert len(gen.calls) == 1 and off.mode == "quote" and not off.retried
        assert not services.settings.answer.sentence_draft
        pipeline, gen = self._pipeline(
            services, tmp_path / "bad", first, "24 months from purchase, with a receipt [1].", **on
        )
        bad = pipeline.ask(WARRANTY)
        assert len(gen.calls) == 2 and bad.mode == "quote" and not bad.retried
        assert bad.answer.startswith('From warranty.md: "The Tidy robot warranty lasts 24 months')

    def test_a_shorter_answer_that_drops_items_of_a_list_is_not_shown(self, services: Services, tmp_path: Path) -> None:
        kb = tmp_path / "kb"
        kb.mkdir(parents=True)
        (kb / "cover.md").write_text("# Cover\n\nThe dock and the charger are covered for 12 months.\n")
        services.ingestor.ingest([kb], "kb")
        question = Question("Which parts are covered for 12 months?", "kb")
        on = services.settings.with_overrides(
            answer__quote_over_decline=0.0, answer__alternatives=0, answer__sentence_draft=True
        )
        shown = {}
        for reply in ("The dock [1].", "The dock and the charger [1]."):
            gen = ScriptedGenerator("The battery [1].", reply)
            shown[reply] = Services(on, embedder=services.embedder, generator=gen).pipeline.ask(question)
        assert shown["The dock [1]."].mode == "quote" and "the charger" in shown["The dock [1]."].answer
        assert shown["The dock and the charger [1]."].mode == "generate"

    @pytest.mark.parametrize("first", [DECLINE_TEXT, "3 years [1]."])
    def test_the_first_alternative_that_passes_is_shown(self, first: str, services: Services, tmp_path: Path) -> None:
        """The model declined (with retrieval sure) or wrote an unsupported claim: with ``answer.alternatives``
        its other replies are checked in order and the first that passes and is a piece of the evidence quote
        is shown ("12 months [1]" is true to its source and answers another question); none, the quote."""
        kb = tmp_path / "kb"
        kb.mkdir(parents=True)
        (kb / "warranty.md").write_text(
            "# Warranty\n\nThe Tidy robot warranty lasts 24 months from purchase. "
            "The spare battery is covered for 12 months.\n"
        )
        services.ingestor.ingest([kb], "kb")
        others = ["12 months [1].", DECLINE_TEXT, "24 months [1].", "36 months [1]."]

        def ask(alternatives: list[str], reply: str = first, **settings: object) -> tuple[ScriptedGenerator, object]:
            gen = ScriptedGenerator(reply, alternatives=alternatives)
            configured = services.settings.with_overrides(
                answer__quote_over_decline=0.0, answer__answerable_threshold=0.0, **settings
            )
            return gen, Services(configured, embedder=services.embedder, generator=gen).pipeline.ask(WARRANTY)

        gen, answer = ask(others, answer__alternatives=4)
        assert gen.alternative_calls == [4] and answer.retried and answer.mode == "generate" and answer.grounded
        assert answer.answer == "24 months [1]." and Path(answer.citations[0].source).name == "warranty.md"
        # Off (the default): never asked. None passing: the quote, as before.
        gen, off = ask(others)
        assert gen.alternative_calls == [] and off.mode == "quote" and not off.retried
        gen, _ = ask(others, answer__alternatives=1)
        assert gen.alternative_calls == [1]
        gen, bad = ask([others[0], others[1], others[3]], answer__alternatives=4)
        assert gen.alternative_calls == [4] and bad.mode == "quote" and "24 months" in bad.answer
        assert not bad.retried and not bad.answer.startswith("12")
        if first != DECLINE_TEXT:
            # A refused claim re-spelled is the same reading: an alternative sharing its words is not shown.
            gen, again = ask(others, "The warranty lasts 48 months [1].", answer__alternatives=4)
            assert gen.alternative_calls == [4] and again.mode == "quote" and not again.retried

    def test_a_server_without_alternatives_still_gets_the_quote(self, services: Services, tmp_path: Path) -> None:
        class NoAlternatives(ScriptedGenerator):
            def alternatives(self, messages: list[dict], *, k: int = 3, **_: object) -> list[str]:
                raise GenerationError("the model server rejected the request: continue_final_message")

        self._ingest(services, tmp_path)
        settings = services.settings.with_overrides(answer__alternatives=2)
        gen = NoAlternatives("The warranty lasts 36 months [1].")
        answer = Services(settings, embedder=services.embedder, generator=gen).pipeline.ask(WARRANTY)
        assert answer.mode == "quote" and "24 months" in answer.answer and not answer.retried

    def test_a_supported_first_reply_asks_for_no_alternative(self, services: Services, tmp_path: Path) -> None:
        pipeline, gen = self._pipeline(
            services, tmp_path, "24 months [1].", alternatives=["30 days [2]."], answer__alternatives=3
        )
        assert pipeline.ask(WARRANTY).mode == "generate" and gen.alternative_calls == []

    def test_a_span_from_a_sentence_about_something_else_is_not_shown(self, services: Services, tmp_path: Path) -> None:
        kb = tmp_path / "kb"
        kb.mkdir(parents=True)
        (kb / "stores.md").write_text(
            "# Shopping\n\nJohn Lewis opened its Newcastle shop in 1864. The Grainger Market has 120 stalls. "
            "Bainbridge's is thought to be the first department store in the world.\n"
        )
        question = Question("Which department store is thought to be the first in the world?", "kb")
        services.ingestor.ingest([kb], "kb")
        for reply, shown in (("John Lewis [1].", False), ("Bainbridge's [1].", True)):
            settings = services.settings.with_overrides(answer__span_sentences=1)
            pipeline = Services(settings, embedder=services.embedder, generator=ScriptedGenerator(reply)).pipeline
            answer = pipeline.ask(question)
            assert (answer.mode == "generate") is shown, (reply, answer.answer, answer.checks)
            if not shown:
                assert "Bainbridge" in answer.answer and "not in the sentences about the question" in str(answer.checks)

    def test_loading_the_embedder_is_timed_apart_from_retrieval(self, services: Services, tmp_path: Path) -> None:
        from rag.embedder import SentenceTransformerEmbedder

        self._ingest(services, tmp_path)
        fresh = SentenceTransformerEmbedder(services.settings.embedder)  # not loaded yet, as in a new process
        pipeline = Services(services.settings, embedder=fresh, generator=ScriptedGenerator("24 months [1].")).pipeline
        first = pipeline.ask(WARRANTY)
        second = pipeline.ask(WARRANTY)
        assert first.as_json()["load_ms"] > 0.0 and second.as_json()["load_ms"] == 0.0  # rounded to 0.1 ms

    def test_invented_source_header_is_stripped(self, services: Services, tmp_path: Path) -> None:
        reply = "The warranty lasts 24 months (warranty.md, page 7) [1]."
        pipeline, _ = self._pipeline(services, tmp_path, reply)
        answer = pipeline.ask(WARRANTY)
        assert "page 7" not in answer.answer and "24 months" in answer.answer and answer.grounded

    def test_decline_is_the_same_in_a_later_turn(self, services: Services, tmp_path: Path) -> None:
        question = "Who won the 1998 football world cup final?"
        pipeline, gen = self._pipeline(services, tmp_path, question)  # the rewrite keeps the question
        first = pipeline.ask(Question(question, "kb"))
        history = [
            {"role": "user", "content": "How long is the warranty?"},
            {"role": "assistant", "content": "24 months"},
        ]
        later = pipeline.ask(Question(question, "kb", history=history))
        assert first.declined and later.declined and first.answerable == later.answerable
        assert len(gen.calls) == 1  # the condensing call only: the model never answered

    def test_irrelevant_question_is_declined_without_calling_the_model(
        self, services: Services, tmp_path: Path
    ) -> None:
        self._ingest(services, tmp_path)
        gen = ScriptedGenerator("should not be used")
        services = Services(services.settings, embedder=services.embedder, generator=gen)
        answer = services.pipeline.ask(Question("Who won the 1998 football world cup final?", "kb"))
        assert answer.declined and answer.answer == DECLINE_TEXT and answer.citations == []
        assert gen.calls == []

    def test_a_question_naming_what_no_document_mentions_is_declined_with_the_name(
        self, services: Services, tmp_path: Path
    ) -> None:
        # On topic (the robot's warranty is indexed), but the documents never name the Tidy X9.
        pipeline, gen = self._pipeline(services, tmp_path, "The warranty lasts 24 months [1].")
        answer = pipeline.ask(Question("How long is the warranty of the Tidy X9?", "kb"))
        assert answer.declined and answer.citations == [] and gen.calls == []
        assert answer.answer == f"{DECLINE_TEXT} They never mention \u201cX9\u201d."
        # A near spelling of an indexed name ("Tiddy") is a typo, not another product; the setting turns it off.
        assert not pipeline.ask(Question("How long is the warranty of the Tiddy robot?", "kb")).declined
        pipeline, _ = self._pipeline(services, tmp_path / "b", "24 months [1].", answer__decline_unmentioned=False)
        assert not pipeline.ask(Question("How long is the warranty of the Tidy X9?", "kb")).declined

    def test_follow_up_is_condensed_before_retrieval(self, services: Services, tmp_path: Path) -> None:
        self._ingest(services, tmp_path)
        gen = ScriptedGenerator("Within how many days are returns accepted?")
        services = Services(services.settings, embedder=services.embedder, generator=gen)
        history = [{"role": "user", "content": "Tell me about the robot"}, {"role": "assistant", "content": "It is"}]
        answer = services.pipeline.ask(Question("and returns?", "kb", history=history))
        assert answer.standalone_question == "Within how many days are returns accepted?"
        assert Path(answer.passages[0].source).name == "returns.md"


    def test_the_compute_gate_is_held_around_cpu_work_and_never_around_a_model_call(
        self, services: Services, tmp_path: Path
    ) -> None:
        """``answer.compute_slots``: one question at a time in retrieval and checking; a model call, seconds
        long, never holds the others up."""
        self._ingest(services, tmp_path)
        gate = RecordingGate()
        gen = ScriptedGenerator("The warranty lasts 24 months [1].", "How long are returns accepted?", "30 days [2].")
        watched = GateWatchingGenerator(gen, gate)
        pipeline = Services(services.settings, embedder=services.embedder, generator=watched).pipeline
        pipeline.gate = gate
        follow_up = Question("And how long for returns?", "kb", history=[
            {"role": "user", "content": WARRANTY.text}, {"role": "assistant", "content": "24 months [1]."}])
        assert pipeline.ask(WARRANTY).grounded and pipeline.ask(follow_up).answer
        assert watched.kinds == ["stream", "chat", "stream"]  # a draft, the follow-up's rewrite, its draft
        assert watched.calls_while_held == 0
        assert gate.entered >= 5 and not gate.held  # lookup, retrieval, checks: each question, all released


class RecordingGate:
    """A gate that counts its uses and knows whether it is held (unit tests only)."""

    def __init__(self) -> None:
        self.held = False
        self.entered = 0

    def __enter__(self) -> None:
        assert not self.held, "the gate was entered twice by one question"
        self.held, self.entered = True, self.entered + 1

    def __exit__(self, *_: object) -> None:
        self.held = False


class GateWatchingGenerator:
    """Counts the model calls made while the gate is held."""

    def __init__(self, inner: ScriptedGenerator, gate: RecordingGate) -> None:
        self.inner, self.gate = inner, gate
        self.kinds: list[str] = []
        self.calls_while_held = 0

    def _call(self, kind: str) -> None:
        self.kinds.append(kind)
        self.calls_while_held += self.gate.held

    def chat(self, messages: list[dict], **kw: object) -> str:
        self._call("chat")
        return self.inner.chat(messages, **kw)

    def stream(self, messages: list[dict], **kw: object) -> Iterator[str]:
        self._call("stream")
        yield from self.inner.stream(messages, **kw)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


class TestCollaborators:
    """The pipeline gets its collaborators, not the services: what it is handed is all it uses."""

    def test_one_reader_lookup_and_refresh_per_question(self, services: Services, tmp_path: Path, monkeypatch) -> None:
        TestPipeline()._ingest(services, tmp_path)
        lookups: list[str] = []

        def readers(name: str):
            lookups.append(name)
            return services.reader(name)

        services.reader("kb")  # cached: each lookup below refreshes it (and hands out a snapshot)
        refreshes = []
        real_refresh = CollectionReader.refresh
        monkeypatch.setattr(CollectionReader, "refresh", lambda self: refreshes.append(1) or real_refresh(self))
        gen = ScriptedGenerator("The warranty lasts 24 months [1].")
        pipeline = AnswerPipeline(
            services.settings,
            retriever=services.retriever,
            generator=gen,
            readers=readers,
            count_tokens=lambda text: len(text.split()),
            evidence=services.evidence,
        )
        answer = pipeline.ask(WARRANTY)
        assert "24 months" in answer.answer and lookups == ["kb"] and len(refreshes) == 1
        pipeline.passages_only(WARRANTY)
        assert lookups == ["kb", "kb"] and len(refreshes) == 2

    def test_history_window_comes_from_the_settings(self, services: Services, tmp_path: Path) -> None:
        history = [
            {"role": "user", "content": "Tell me about the robot"},
            {"role": "assistant", "content": "It is a cleaning robot."},
            {"role": "user", "content": "And the dock?"},
            {"role": "assistant", "content": "It charges it."},
        ]
        question = Question("and returns?", "kb", history=history)
        seen = {}
        for window in (4, 2):
            pipeline, gen = TestPipeline()._pipeline(
                services,
                tmp_path / str(window),
                "Within how many days are returns accepted?",
                answer__history_messages=window,
            )
            pipeline.ask(question)
            seen[window] = str(gen.calls[0])  # the follow-up rewrite's messages
        assert "Tell me about the robot" in seen[4] and "Tell me about the robot" not in seen[2]
        assert "And the dock?" in seen[2]


def test_the_quote_is_the_best_sentence_that_can_answer() -> None:
    """A "how many" question is quoted a sentence with a number when one of the best sentences has it."""

    def ev(n: int, text: str) -> Evidence:
        return Evidence(n, f"doc{n}.md", None, n, 0, len(text), text, 1.0 / n)

    best = [ev(1, "Newcastle is served by Haymarket Bus Station."), ev(2, "The city has two major bus stations.")]
    assert [e.n for e in answering_first(best, "How many major bus stations are in Newcastle?")] == [2, 1]
    assert [e.n for e in answering_first(best, "Which bus station serves Newcastle?")] == [1, 2]
    assert [e.n for e in answering_first(best[:1], "How many bus stations are there?")] == [1]  # none can: as is
