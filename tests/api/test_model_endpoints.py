"""The API over several model endpoints (llm.base_urls) while one of them is down: ready, and answering
(streamed) through the other."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from rag.settings import Settings
from tests.api.helpers import ApiHandle, sse_events
from tests.fake_model_server import base_url, fake_model_server
from tests.helpers import closed_llm_url

BATTERY = "What is the battery capacity of the Sweep S3?"
PIECES = ("The Sweep S3 ", "battery holds ", "5200 mAh [1].")


def test_ready_and_answering_with_one_endpoint_down(
    make_api: Callable[..., ApiHandle], api_data_dir: Path
) -> None:
    dead = closed_llm_url()
    with fake_model_server(PIECES) as server:
        settings = Settings(data_dir=api_data_dir).with_overrides(
            llm__base_urls=[dead, base_url(server)], answer__mode="generate"
        )
        api = make_api(settings)
        ready = api.client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["checks"]["model_server"] == {"ok": True}
        question = {"question": BATTERY, "collection": "support"}
        with api.client.stream("POST", "/v1/chat", json=question, headers=api.auth(api.key())) as response:
            assert response.status_code == 200
            events = list(sse_events(response.iter_lines()))
        assert len(server.requests) >= 1
    tokens = "".join(json.loads(data)["text"] for kind, data in events if kind == "token")
    final = json.loads(events[-1][1])
    assert events[-1][0] == "final" and final["model_error"] is None, final
    assert "5200 mAh" in tokens and "5200 mAh" in final["answer"], (tokens, final)
