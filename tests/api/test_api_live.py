"""The API answering with the real vLLM server, under a real uvicorn: JSON answers, the SSE stream read
the way a client reads it, follow-ups by conversation id, the OpenAI client, and a client that hangs up."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from docqa.api.streaming import WORKERS
from rag.adapters import register_adapter, registered_adapters
from tests.api.helpers import ApiHandle, sse_events
from tests.helpers import SAMPLES

pytestmark = pytest.mark.integration

SITE = "https://shop.example.com"
WARRANTY = "How long is the warranty on the Sweep S3?"  # QUESTIONS.md 6: sweep_s3_manual.pdf, page 5
SAMPLE_FILES = {p.name for p in SAMPLES.iterdir()}
ANSWER_TOKENS = 96  # enough for a cited sentence; the tiny model otherwise rambles to the 384-token limit


@pytest.fixture
def live(serve_api: Callable[..., ApiHandle], vllm_server, api_data_dir: Path) -> ApiHandle:
    return serve_api(vllm_server.settings.with_overrides(data_dir=api_data_dir, llm__max_tokens=ANSWER_TOKENS))


def stream_chat(api: ApiHandle, headers: dict[str, str], body: dict) -> list[tuple[str, dict, float]]:
    """POST /v1/chat and read the events as they arrive: (event, data, seconds since the request)."""
    started = time.perf_counter()
    out = []
    with api.client.stream("POST", "/v1/chat", json=body, headers=headers) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for event, data in sse_events(response.iter_lines()):
            out.append((event, json.loads(data), time.perf_counter() - started))
    return out


def test_ask_answers_with_citations(live: ApiHandle) -> None:
    key = live.key()
    response = live.client.post("/v1/ask", json={"question": WARRANTY, "collection": "support"}, headers=live.auth(key))
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body["answer"], str) and body["answer"].strip()
    assert body["generation_ms"] > 0 and body["retrieval_ms"] > 0 and body["conversation_id"]
    for citation in body["citations"]:
        assert Path(citation["source"]).name in SAMPLE_FILES and citation["text"]
    # The supporting sentence, located in its cited passage by chunk and offsets.
    evidence = body["evidence"][0]
    assert "24 months" in evidence["text"] and evidence["end"] - evidence["start"] == len(evidence["text"])
    assert any(c["n"] == evidence["n"] and evidence["text"] in c["text"] for c in body["citations"])
    assert body["mode"] in ("generate", "quote") and (body["grounded"] or body["mode"] == "quote")
    assert live.client.get("/readyz").status_code == 200


def test_chat_streams_then_follows_up(live: ApiHandle) -> None:
    key = live.key("widget", collections=["support"], origins=[SITE])
    headers = live.auth(key, SITE)
    events = stream_chat(live, headers, {"question": WARRANTY, "collection": "support"})
    kinds = [e for e, _, _ in events]
    assert kinds[0] == "meta" and kinds[1] == "sources" and kinds[-1] == "final", kinds
    tokens = [d["text"] for e, d, _ in events if e == "token"]
    assert tokens and set(kinds[2:-1]) == {"token"}
    sources = events[1][1]["citations"]
    assert sources[0]["source"] == "sweep_s3_manual.pdf" and sources[0]["page"] == 5  # file names only
    final = events[-1][1]
    # verify mode (the default): the text shown is the checked answer, never unchecked model output.
    assert final["answer"].strip() and "".join(tokens) == final["answer"]
    assert final["evidence"] and Path(final["evidence"][0]["source"]).name == final["evidence"][0]["source"]
    assert {c["n"] for c in final["citations"]} <= {c["n"] for c in sources}
    assert final["generation_ms"] > 0 and final["conversation_id"] == events[0][1]["conversation_id"]

    follow_up = stream_chat(
        live,
        headers,
        {"question": "And the battery?", "collection": "support", "conversation_id": final["conversation_id"]},
    )
    assert follow_up[-1][0] == "final" and follow_up[-1][1]["conversation_id"] == final["conversation_id"]
    conversation = next(iter(live.state.conversations._items.values()))
    assert conversation.turns == 2 and conversation.history[0]["content"] == WARRANTY

    metrics = live.client.get("/metrics", headers=live.auth(live.key())).text
    assert "docqa_time_to_first_token_seconds_count 2.0" in metrics
    assert 'docqa_answers_total{outcome="answered"}' in metrics or 'outcome="declined"' in metrics
    tokens_line = next(line for line in metrics.splitlines() if line.startswith("docqa_generated_tokens_total"))
    assert float(tokens_line.split()[-1]) >= len(tokens)


def test_openai_client_gets_a_grounded_answer(live: ApiHandle, vllm_server) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=f"{live.base_url}/v1", api_key=live.key(), max_retries=0, timeout=300)
    assert "support" in [m.id for m in client.models.list()]
    messages = [{"role": "user", "content": WARRANTY}]
    response = client.chat.completions.create(model="support", messages=messages)
    assert response.choices[0].message.content.strip()
    docqa = response.model_extra["docqa"]
    assert docqa["collection"] == "support" and docqa["generation_ms"] > 0 and docqa["evidence"]
    assert all(Path(c["source"]).name in SAMPLE_FILES for c in docqa["citations"])

    # Streaming, through the LoRA adapter the test server also serves: model "collection:adapter".
    model = "support"
    if vllm_server.adapter_name:
        path = registered_adapters(vllm_server.settings)[vllm_server.adapter_name]
        register_adapter(live.state.settings, vllm_server.adapter_name, path)
        model = f"support:{vllm_server.adapter_name}"
    chunks = list(client.chat.completions.create(model=model, messages=messages, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip() and chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].model == model and "citations" in chunks[-1].model_extra["docqa"]


def test_client_that_hangs_up_stops_the_generation(live: ApiHandle) -> None:
    key = live.key()
    with live.client.stream(
        "POST", "/v1/chat", json={"question": WARRANTY, "collection": "support"}, headers=live.auth(key)
    ) as response:
        for event, _ in sse_events(response.iter_lines()):
            if event == "sources":
                break  # leave while the model writes; closing the response drops the connection
    deadline = time.monotonic() + 20
    metrics = live.state.metrics
    while time.monotonic() < deadline:
        if metrics.active_streams._value.get() == 0 and not WORKERS.busy:
            break
        time.sleep(0.1)
    assert metrics.active_streams._value.get() == 0
    assert metrics.cancelled_streams._value.get() == 1
    assert not WORKERS.busy, "the pipeline kept running"
