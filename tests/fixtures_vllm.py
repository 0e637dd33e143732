"""Pytest plugin: the converted chat checkpoint and a real vLLM server, shared by a test session.

``prepared_model_dir`` converts the bundled GGUF once into ``<repo>/.cache/models`` and reuses it
across sessions (the conversion takes about a minute). ``vllm_server`` starts vLLM on a free local
port with the base model, the shipped grounded adapter (which the pipeline then answers with, as in
``make run``) and a small random LoRA adapter, and stops it at session end; the server
also dies with the test process (PR_SET_PDEATHSIG), so a crashed session leaves nothing behind.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rag.settings import Settings

REPO = Path(__file__).resolve().parent.parent
CACHE_DIR = REPO / ".cache"  # its models/ subfolder holds the converted checkpoint
TEST_ADAPTER = "docqa-test-lora"
GROUNDED_ADAPTER = REPO / "finetune" / "adapters" / "docqa-grounded"  # shipped; answers by default


@dataclass
class VLLMServer:
    base_url: str
    settings: Settings  # a Settings whose llm.base_url and model.* point at this server
    server: object  # rag.model_server.ModelServer
    adapter_name: str | None  # the random LoRA adapter it also serves (None without peft)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def prepared_model_dir() -> Path:
    """The bundled SmolLM2 converted to safetensors, under <repo>/.cache/models (converted once)."""
    from rag.model_server import prepare

    return prepare(Settings(data_dir=CACHE_DIR))


def make_random_lora(base_dir: Path, out: Path, rank: int = 8, strength: float = 10.0) -> Path:
    """A LoRA adapter with random weights, scaled up so that it visibly changes greedy answers."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    config = LoraConfig(
        r=rank, lora_alpha=2 * rank, target_modules=["q_proj", "v_proj"], init_lora_weights=False
    )
    peft_model = get_peft_model(model, config)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.mul_(strength)
    peft_model.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def vllm_server(prepared_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VLLMServer]:
    """A real vLLM server (the CPU build here) serving the converted model and a test adapter."""
    import importlib.util

    from rag.adapters import register_adapter
    from rag.model_server import ModelServer, server_url, venv_python

    data_dir = tmp_path_factory.mktemp("vllm-data")
    port = free_port()
    settings = Settings(
        data_dir=data_dir,
        model={
            "source": str(prepared_model_dir),
            "port": port,
            "max_model_len": 2048,
            "venv": REPO / ".venv-vllm",
        },
        llm={"backend": "openai", "base_url": f"http://127.0.0.1:{port}/v1", "context_window": 2048},
    )
    if not venv_python(settings).exists():
        pytest.fail(f"vLLM's environment is missing ({venv_python(settings)}); `make setup` creates it")
    adapter = None
    if (GROUNDED_ADAPTER / "adapter_model.safetensors").exists():
        register_adapter(settings, settings.answer.adapter or GROUNDED_ADAPTER.name, GROUNDED_ADAPTER)
    if importlib.util.find_spec("peft") is not None:
        register_adapter(settings, TEST_ADAPTER, make_random_lora(prepared_model_dir, data_dir / "test-lora"))
        adapter = TEST_ADAPTER
    server = ModelServer(settings)
    server.start()
    try:
        server.wait_ready()
        yield VLLMServer(server_url(settings), settings, server, adapter)
    finally:
        server.stop()
