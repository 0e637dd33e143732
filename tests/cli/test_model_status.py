"""`docqa model status` with several model endpoints (DOCQA_LLM_BASE_URLS): each endpoint's state, and
up when one of them serves the base model."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.test_cli import docqa
from tests.fake_model_server import base_url, fake_model_server
from tests.helpers import closed_llm_url, free_port


def test_status_lists_each_endpoint(tmp_path: Path) -> None:
    dead = closed_llm_url()
    local = {"DOCQA_MODEL_PORT": str(free_port())}  # no server of docqa's own on this host
    with fake_model_server(["x"]) as server:
        env = {**local, "DOCQA_LLM_BASE_URLS": json.dumps([base_url(server), dead])}
        result = docqa("model", "status", "--json", data_dir=tmp_path / "data", env=env)
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["up"] is True and report["models"] == []  # up through the endpoints, not locally
        assert report["endpoints"] == [
            {"url": base_url(server), "models": ["docqa-base"], "up": True},
            {"url": dead, "models": [], "up": False},
        ]
        text = docqa("model", "status", data_dir=tmp_path / "data", env=env)
        assert f"endpoint {base_url(server)}: up (docqa-base)" in text.stdout
        assert f"endpoint {dead}: down" in text.stdout and "DOCQA_LLM_BASE_URLS=" in text.stdout
    env = {**local, "DOCQA_LLM_BASE_URLS": f"{dead},{closed_llm_url()}"}
    result = docqa("model", "status", "--json", data_dir=tmp_path / "data", env=env)
    assert result.returncode == 1 and not any(e["up"] for e in json.loads(result.stdout)["endpoints"])
