"""Where an answer's time goes: the recorder's split into stages, the generator filling in each model call
from a real HTTP server that speaks vLLM's API (tests/fake_model_server.py), and the pipeline attaching the
whole to the Answer."""

from __future__ import annotations

from pathlib import Path

from docqa.services import Services
from rag.generation import OpenAIGenerator
from rag.settings import LLMSettings
from rag.timing import AnswerTimer
from rag.types import Question
from tests.fake_model_server import base_url, fake_model_server

PIECES = ["The warranty ", "lasts 24 months ", "[1]."]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class TestAnswerTimer:
    def test_stages_split_the_total_and_a_follow_up_rewrite_is_not_retrieval(self) -> None:
        clock = FakeClock()
        timer = AnswerTimer(clock)
        condense = timer.call("condense")
        clock.now = 0.2
        condense.end()  # 200 ms, inside the pipeline's 500 ms of "retrieval"
        clock.now = 0.5
        draft = timer.call("draft")
        clock.now = 0.6
        draft.piece()
        clock.now = 1.5
        draft.piece()
        draft.end()
        clock.now = 1.75
        timings = timer.finish(retrieval_ms=500.0)
        assert round(timings.retrieval_ms) == 300
        assert [c.purpose for c in timings.calls] == ["condense", "draft"]
        assert round(draft.first_token_ms) == 100 and round(draft.total_ms) == 1000
        assert draft.generated_tokens == 2  # the pieces, where the server gave no count
        assert round(timings.verification_ms) == 250 and round(timings.total_ms) == 1750
        assert {k: round(v) for k, v in timings.stages().items()} == {
            "retrieval": 300, "condense": 200, "draft": 1000, "verification": 250
        }

    def test_a_call_left_open_ends_with_the_answer(self) -> None:
        clock = FakeClock()
        timer = AnswerTimer(clock)
        call = timer.call("draft")
        clock.now = 0.4
        assert round(timer.finish(0.0).calls[0].total_ms) == 400 and call.total_ms is not None


class TestGeneratorFillsTheCall:
    def test_a_stream_reports_first_token_time_and_the_server_s_token_counts(self) -> None:
        with fake_model_server(PIECES, delay=0.05) as server:
            gen = OpenAIGenerator(LLMSettings(base_url=base_url(server)), "docqa-base")
            call = AnswerTimer().call("draft")
            text = "".join(gen.stream([{"role": "user", "content": "how long is it"}], call=call))
        assert text == "".join(PIECES)
        assert server.requests[-1]["stream_options"] == {"include_usage": True}
        assert call.prompt_tokens == 4 and call.generated_tokens == 3  # the server's counts (words, pieces)
        assert 50 <= call.first_token_ms < call.total_ms and call.total_ms >= 150

    def test_without_the_server_s_counts_the_pieces_are_the_generated_tokens(self) -> None:
        with fake_model_server(PIECES) as server:
            gen = OpenAIGenerator(LLMSettings(base_url=base_url(server), stream_usage=False), "docqa-base")
            call = AnswerTimer().call("draft")
            list(gen.stream([{"role": "user", "content": "q"}], call=call))
        assert "stream_options" not in server.requests[-1]
        assert call.prompt_tokens is None and call.generated_tokens == 3 and call.first_token_ms is not None

    def test_a_plain_completion_reports_its_counts_and_no_first_token(self) -> None:
        with fake_model_server(PIECES) as server:
            gen = OpenAIGenerator(LLMSettings(base_url=base_url(server)), "docqa-base")
            call = AnswerTimer().call("condense")
            gen.chat([{"role": "user", "content": "one two three"}], call=call)
        assert (call.prompt_tokens, call.generated_tokens, call.first_token_ms) == (3, 3, None)
        assert call.total_ms is not None


class TestAnswerTimings:
    def test_each_model_call_of_an_answer_is_on_it_with_its_purpose(self, services: Services, tmp_path: Path) -> None:
        kb = tmp_path / "kb"
        kb.mkdir()
        (kb / "warranty.md").write_text("# Warranty\n\nThe Tidy robot warranty lasts 24 months from purchase.\n")
        services.ingestor.ingest([kb], "kb")
        history = [
            {"role": "user", "content": "Tell me about the Tidy robot."},
            {"role": "assistant", "content": "Ok."},
        ]
        with fake_model_server(PIECES, delay=0.02) as server:
            settings = services.settings.with_overrides(llm__base_url=base_url(server), llm__base_urls=[])
            pipeline = Services(settings, embedder=services.embedder).pipeline
            answer = pipeline.ask(Question("How long is its warranty?", "kb", history=history))
        timings = answer.timings
        assert timings is not None and answer.answer
        purposes = [c.purpose for c in timings.calls]
        assert purposes[:2] == ["condense", "draft"]
        draft = timings.calls[1]
        assert draft.generated_tokens == 3 and draft.prompt_tokens and draft.prompt_tokens > 20
        assert 20 <= draft.first_token_ms <= draft.total_ms
        # The stages add up to the whole, and the pipeline's retrieval figure holds the rewrite's time.
        parts = timings.retrieval_ms + timings.model_ms() + timings.verification_ms
        assert abs(parts - timings.total_ms) < 1.0
        assert abs(timings.retrieval_ms + timings.model_ms("condense") - answer.retrieval_ms) < 1.0
        data = answer.as_json()["timings"]
        assert [c["purpose"] for c in data["model_calls"]] == purposes
        assert data["model_calls"][1]["generated_tokens"] == 3


def test_an_evaluation_row_has_each_stage_s_median() -> None:
    from rag.evaluation.answer_eval import stage_medians

    records = [
        {"stage_ms": {"retrieval": 10.0, "draft": 900.0, "verification": 5.0}},
        {"stage_ms": {"retrieval": 30.0, "draft": 1100.0, "sentence_draft": 400.0, "verification": 7.0}},
        {"stage_ms": {"retrieval": 20.0, "draft": 1000.0, "verification": 6.0}},
        {"stage_ms": {}},  # passages only: no model, no timings
    ]
    assert stage_medians(records) == {
        "ms_retrieval": 20.0, "ms_draft": 1000.0, "ms_verification": 6.0, "ms_sentence_draft": 400.0
    }
