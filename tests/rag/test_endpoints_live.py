"""Several model endpoints end to end: ``llm.base_urls`` = [a port where nothing listens, the real vLLM
server]; the answer pipeline answers a real question, blocking and streamed, through the live one."""

from __future__ import annotations

from pathlib import Path

import pytest

from docqa.services import Services
from rag.embedder import SentenceTransformerEmbedder
from rag.generation import OpenAIGenerator
from rag.types import Question
from tests.helpers import VLLMServer, closed_llm_url

pytestmark = pytest.mark.integration

MANUAL = """# Sweep S3 quick facts

## Battery

The Sweep S3 has a 5200 mAh lithium-ion battery. A full charge takes about 4 hours and lasts up to
150 minutes of cleaning on the standard suction level.

## Filter

Replace the HEPA filter every 3 months, or sooner in homes with pets.
"""


def test_a_dead_endpoint_first_in_the_list_does_not_stop_an_answer(
    vllm_server: VLLMServer, embedder: SentenceTransformerEmbedder, tmp_path: Path
) -> None:
    dead = closed_llm_url()
    settings = vllm_server.settings.with_overrides(
        data_dir=tmp_path / "data", llm__base_urls=[dead, vllm_server.base_url]
    )
    services = Services(settings, embedder=embedder)
    doc = tmp_path / "sweep.md"
    doc.write_text(MANUAL)
    assert not services.ingestor.ingest([doc], "default").failed
    services.generator.check()  # ready: one endpoint serves the model

    answer = services.pipeline.ask(Question("What is the battery capacity of the Sweep S3?", "default"))
    assert not answer.declined and "5200" in (answer.answer or ""), answer
    assert answer.citations and Path(answer.citations[0].source).name == "sweep.md"

    streamed = Services(settings.with_overrides(answer__mode="generate"), embedder=embedder)
    events = list(streamed.pipeline.stream(Question("How often should the HEPA filter be replaced?", "default")))
    tokens = [e["text"] for e in events if e["event"] == "token"]
    assert len(tokens) > 3 and not events[-1]["answer"].declined, events[-1]["answer"]

    for generator in (services.generator, streamed.generator):
        assert isinstance(generator, OpenAIGenerator)
        dead_endpoint, live_endpoint = generator.pool.endpoints
        assert dead_endpoint.url == dead and dead_endpoint.failures == 1  # tried once, then passed over
        assert live_endpoint.failures == 0 and live_endpoint.in_flight == 0
