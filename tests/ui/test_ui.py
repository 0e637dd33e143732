"""The UI's pure logic: ingest progress, the answer stream adapter, history, the `docqa ui` launch (upload
names and folders: ``tests/ingest/test_uploads.py``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from docqa.cli.ui_cmds import APP_SCRIPT, child_environment, streamlit_command
from rag.errors import DocqaError
from rag.settings import Settings
from rag.types import Answer, Citation
from ui.answering import (
    AnswerStream,
    checking_message,
    escape_markdown,
    evidence_spans,
    history_for_pipeline,
    other_passages,
    quote_markdown,
    shown_sources,
)
from ui.progress import FileProgress


class TestProgress:
    def test_progress_counts_files(self) -> None:
        seen: list[tuple[int, int]] = []
        progress = FileProgress(lambda done, total: seen.append((done, total)))
        progress.start(3)
        progress.advance(1, 0)
        progress.advance(2, 9)
        progress.advance(1, 0)  # never above the total
        assert seen == [(0, 3), (1, 3), (3, 3), (3, 3)]


def citation(n: int) -> Citation:
    return Citation(n=n, source=f"/kb/doc{n}.md", page=None, text=f"text {n}", score=0.5)


class TestAnswerStream:
    def test_tokens_then_sources_and_answer(self) -> None:
        answer = Answer("It costs $39.90 [1].", [citation(1)], 12.0, 80.0, passages=[citation(1), citation(2)])
        events = [
            {"event": "sources", "passages": [citation(1), citation(2)]},
            {"event": "token", "text": "It costs "},
            {"event": "token", "text": "$39.90 [1]."},
            {"event": "final", "answer": answer},
        ]
        stream = AnswerStream(events)
        stream.prime()
        assert stream.passages == [citation(1), citation(2)] and stream.answer is None
        assert list(stream.tokens()) == ["It costs ", "\\$39.90 [1]."]
        assert stream.text == "It costs $39.90 [1]." and stream.answer is answer

    def test_sources_come_first_then_the_checked_answer(self) -> None:
        """Verify mode: the passages are there to show (with "Checking the answer…") before the answer, which
        arrives whole once checked."""
        answer = Answer("It costs $39.90 [1].", [citation(1)], 12.0, 80.0, passages=[citation(1)])
        seen: list[str] = []

        def events():
            for event in (
                {"event": "sources", "passages": [citation(1)]},
                {"event": "progress"},
                {"event": "token", "text": "It costs $39.90 [1]."},
                {"event": "final", "answer": answer},
            ):
                seen.append(event["event"])
                yield event

        stream = AnswerStream(events())
        assert stream.find_sources() and seen == ["sources"] and stream.passages == [citation(1)]
        checking = checking_message("m-checking", stream.passages, "verify")
        assert checking is not None and checking["passages"] == [citation(1).as_json()] and not checking["citations"]
        assert checking_message("m", stream.passages, "generate") is None  # streamed at once: nothing to wait for
        assert checking_message("m", [], "verify") is None  # nothing found: a decline
        stream.prime()
        assert list(stream.tokens()) == ["It costs \\$39.90 [1]."] and stream.answer is answer

    def test_an_answer_before_any_sources_is_not_lost(self) -> None:
        answer = Answer("No.", [], 1.0, 0.0, declined=True)
        stream = AnswerStream([{"event": "token", "text": "No."}, {"event": "final", "answer": answer}])
        assert not stream.find_sources()
        stream.prime()
        assert list(stream.tokens()) == ["No."] and stream.answer is answer

    def test_error_after_sources_keeps_the_passages(self) -> None:
        def events():
            yield {"event": "sources", "passages": [citation(1)]}
            raise DocqaError("model server down")

        stream = AnswerStream(events())
        with pytest.raises(DocqaError):
            stream.prime()
        assert stream.passages == [citation(1)]


def test_escape_markdown_keeps_prices_literal() -> None:
    assert escape_markdown("from $5 to $10") == "from \\$5 to \\$10"


def test_history_leaves_out_failed_turns() -> None:
    messages = [
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "q2"},
        {"role": "assistant", "content": "", "error": "model server down"},
        {"role": "user", "content": "q3"},
        {"role": "assistant", "content": "a3"},
    ]
    assert history_for_pipeline(messages) == [
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "q3"},
        {"role": "assistant", "content": "a3"},
    ]


def test_shown_sources_prefers_citations() -> None:
    cited = {"citations": [{"n": 1}], "passages": [{"n": 1}, {"n": 2}]}
    assert shown_sources(cited) == ("Sources", [{"n": 1}])
    assert shown_sources({"citations": [], "passages": [{"n": 2}]}) == ("Passages consulted", [{"n": 2}])
    assert shown_sources({"citations": [], "passages": [{"n": 2}], "error": "x"})[0] == "Passages retrieval found"
    assert shown_sources({"citations": [], "passages": []}) == ("", [])


def test_other_passages_are_the_uncited_ones() -> None:
    message = {"citations": [{"chunk_id": 7}], "passages": [{"chunk_id": 3}, {"chunk_id": 7}, {"chunk_id": 9}]}
    assert other_passages(message) == [{"chunk_id": 3}, {"chunk_id": 9}]
    assert other_passages({"citations": [], "passages": [{"chunk_id": 3}]}) == []  # already the main list


class TestLaunch:
    def test_command_listens_locally_headless_on_the_configured_port(self) -> None:
        settings = Settings().with_overrides(ui__port=8611)
        cmd = streamlit_command(settings)
        assert cmd[1:5] == ["-m", "streamlit", "run", str(APP_SCRIPT)] and APP_SCRIPT.is_file()
        flags = dict(zip(cmd[5::2], cmd[6::2], strict=True))
        assert flags["--server.port"] == "8611" and flags["--server.address"] == "127.0.0.1"
        assert flags["--server.headless"] == "true"
        assert streamlit_command(settings, port=9000, address="0.0.0.0")[6:9] == ["9000", "--server.address", "0.0.0.0"]

    def test_settings_travel_through_the_environment(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        settings = Settings(data_dir=tmp_path / "d").with_overrides(
            llm__base_url="http://127.0.0.1:1/v1", retrieval__top_k=9, model__served_name="kestrel"
        )
        parent = {"PATH": os.environ["PATH"], "DOCQA_LLM_BASE_URL": "http://stale:1/v1", "DOCQA_CONFIG": "x.toml"}
        env = child_environment(settings, parent)
        assert "DOCQA_LLM_BASE_URL" not in env and "DOCQA_CONFIG" not in env and env["PATH"] == os.environ["PATH"]
        for key in [k for k in os.environ if k.startswith("DOCQA_")]:
            monkeypatch.delenv(key)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        rebuilt = Settings()
        assert rebuilt == settings.with_overrides(data_dir=settings.data_dir.resolve())
        assert (rebuilt.llm.base_url, rebuilt.retrieval.top_k, rebuilt.llm_model_name) == (
            "http://127.0.0.1:1/v1",
            9,
            "kestrel",
        )


class TestEvidenceHighlight:
    TEXT = "Charging.\nThe battery holds 5200 mAh [see table].\nIt charges in 4 hours."
    EVIDENCE = ({"n": 1, "text": "The battery holds 5200 mAh [see table]."}, {"n": 2, "text": "It charges"})

    def test_the_evidence_of_this_passage_is_highlighted_and_escaped(self) -> None:
        spans = evidence_spans(self.TEXT, 1, self.EVIDENCE)
        assert spans == [(10, 49)]  # passage 2's evidence is not this passage's
        quoted = quote_markdown(self.TEXT, spans, 900)
        assert quoted.splitlines() == [
            "> Charging\\.",
            "> :orange-background[The battery holds 5200 mAh \\[see table\\]\\.]",
            "> It charges in 4 hours\\.",
        ]

    def test_a_long_passage_is_cut_around_its_evidence(self) -> None:
        text = "filler words " * 200 + self.TEXT
        quoted = quote_markdown(text, evidence_spans(text, 1, self.EVIDENCE), 400)
        assert quoted.startswith("> … ") and ":orange-background[The battery holds" in quoted
        assert len(quoted) < 600


def test_an_answer_message_keeps_where_its_time_went() -> None:
    from rag.timing import ModelCall, Timings
    from ui.answering import assistant_message

    draft = ModelCall("draft", 0.0, total_ms=1234.4)
    answer = Answer("24 months [1].", [citation(1)], 40.0, 1300.0, passages=[citation(1)])
    answer.timings = Timings(40.2, 25.6, 1300.2, [draft])
    msg = assistant_message("m", "How long?", answer, collection="kb", model=None)
    assert msg["timing"]["stages_ms"] == {"retrieval": 40, "draft": 1234, "verification": 26}
