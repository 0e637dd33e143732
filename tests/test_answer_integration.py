"""End to end over the sample corpus with the real vLLM server: streaming, citations, declining."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.embedder import SentenceTransformerEmbedder
from rag.services import Services
from rag.settings import Settings
from tests.conftest import REPO, SAMPLES

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def answering(vllm_server, embedder: SentenceTransformerEmbedder, tmp_path_factory) -> Services:
    settings: Settings = vllm_server.settings.with_overrides(data_dir=tmp_path_factory.mktemp("answers") / "data")
    services = Services(settings)
    services.__dict__["embedder"] = embedder
    report = services.ingestor.ingest([SAMPLES], "default")
    assert not report.failed, report.failed
    return services


# (question, file, page): from data/QUESTIONS.md
CASES = [
    ("How long is the warranty on the Sweep S3?", "sweep_s3_manual.pdf", 5),
    ("What is the battery capacity of the Sweep S3?", "sweep_s3_manual.pdf", 1),
    ("Within how many days are returns accepted?", "returns_policy.docx", None),
    ("Which firmware version introduced Carpet Boost?", "firmware_release_notes.pptx", 3),
]


@pytest.mark.parametrize(("question", "source", "page"), CASES)
def test_answer_streams_and_cites_the_right_file_and_page(
    answering: Services, question: str, source: str, page: int | None
) -> None:
    events = list(answering.pipeline.stream(question, collection="default"))
    tokens = [e["text"] for e in events if e["event"] == "token"]
    assert len(tokens) > 3, "the answer was not streamed"
    answer = events[-1]["answer"]
    assert not answer.declined and answer.answer.strip()
    assert answer.citations, f"no citation in {answer.answer!r}"
    cited = {(Path(c.source).name, c.page) for c in answer.citations}
    assert (source, page) in cited, f"{answer.answer!r} cites {cited}"
    assert answer.dropped_markers >= 0 and answer.generation_ms > 0


def test_out_of_scope_question_is_declined(answering: Services) -> None:
    answer = answering.pipeline.ask("Who won the football world cup final in 1998?", collection="default")
    assert answer.declined and answer.citations == []
    assert "do not cover" in answer.answer


def test_follow_up_uses_the_conversation(answering: Services) -> None:
    history = [
        {"role": "user", "content": "What is the battery capacity of the Sweep S3?"},
        {"role": "assistant", "content": "The battery capacity is 5200 mAh [1]."},
    ]
    answer = answering.pipeline.ask("How much does a replacement one cost?", collection="default", history=history)
    assert any(Path(p.source).name == "spare_parts.csv" for p in answer.passages), answer.standalone_question


def test_cli_ask_json(answering: Services) -> None:
    settings = answering.settings
    env = dict(
        os.environ,
        DOCQA_DATA_DIR=str(settings.data_dir),
        DOCQA_LLM_BASE_URL=settings.llm.base_url,
        DOCQA_MODEL_SERVED_NAME=settings.model.served_name,
        HF_HUB_OFFLINE="1",
    )
    result = subprocess.run(
        [sys.executable, "-m", "rag.cli.main", "ask", "How long is the warranty on the Sweep S3?", "--json"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert {"answer", "citations", "retrieval_ms", "generation_ms"} <= set(data)
    assert data["citations"] and {"n", "source", "page", "text", "score"} <= set(data["citations"][0])
