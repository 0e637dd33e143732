"""An answer's timings at the API's edges: in the /v1/ask body, in the SSE ``final`` event and as Prometheus
histograms per stage, from the real app and index with a model server that speaks vLLM's API
(tests/fake_model_server.py, reporting token counts as vLLM does)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

from rag.settings import Settings
from tests.api.helpers import ApiHandle, sse_events
from tests.fake_model_server import base_url, fake_model_server

BATTERY = {"question": "What is the battery capacity of the Sweep S3?", "collection": "support"}
PIECES = ["The battery ", "holds 5200 mAh ", "[1]."]


def test_ask_chat_and_metrics_carry_the_stages(make_api: Callable[..., ApiHandle], api_data_dir: Path) -> None:
    with fake_model_server(PIECES, delay=0.01) as server:
        api = make_api(Settings(data_dir=api_data_dir).with_overrides(llm__base_url=base_url(server)))
        headers = api.auth(api.key())
        body = api.client.post("/v1/ask", json=BATTERY, headers=headers).json()
        with api.client.stream("POST", "/v1/chat", json=BATTERY, headers=headers) as response:
            events = list(sse_events(response.iter_lines()))
        metrics = api.client.get("/metrics", headers=headers).text
    timings = body["timings"]
    draft = timings["model_calls"][0]
    assert draft["purpose"] == "draft" and draft["generated_tokens"] == 3 and draft["prompt_tokens"] > 20
    assert draft["first_token_ms"] <= draft["total_ms"] and timings["retrieval_ms"] > 0
    assert timings["total_ms"] >= timings["retrieval_ms"] + draft["total_ms"]
    final = next(json.loads(data) for name, data in events if name == "final")
    assert final["timings"]["model_calls"][0]["purpose"] == "draft"
    for stage in ("retrieval", "draft", "verification"):
        assert f'docqa_answer_stage_seconds_count{{stage="{stage}"}} 2.0' in metrics
    assert 'docqa_model_first_token_seconds_count{purpose="draft"} 2.0' in metrics
    assert 'docqa_model_tokens_total{kind="generated",purpose="draft"} 6.0' in metrics


def test_the_sources_arrive_while_the_model_is_still_reading(
    serve_api: Callable[..., ApiHandle], api_data_dir: Path
) -> None:
    """The first visible content: the stream's ``sources`` (with ``checking``) reach the client before the
    model has sent anything, and the checked answer follows once it does."""
    gate = threading.Event()
    with fake_model_server(PIECES, gate=gate) as server:
        api = serve_api(Settings(data_dir=api_data_dir).with_overrides(llm__base_url=base_url(server)))
        headers = api.auth(api.key())
        # Read timeout below the gate's 120 s: sources held back until the model's first token fail here.
        with api.client.stream("POST", "/v1/chat", json=BATTERY, headers=headers, timeout=60) as response:
            assert response.status_code == 200
            events = sse_events(response.iter_lines())
            seen = [next(events), next(events)]  # the model is held: these came without it
            assert [name for name, _ in seen] == ["meta", "sources"] and not gate.is_set()
            assert json.loads(seen[1][1])["checking"] is True
            gate.set()
            rest = dict(events)
    assert "5200 mAh" in json.loads(rest["final"])["answer"]
