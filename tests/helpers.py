"""What tests in several folders share and import: paths, free ports, the test LoRA adapter. Fixtures live
in the ``conftest.py`` of the folder that needs them (shared ones in ``tests/conftest.py``)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

from rag.settings import Settings

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "data" / "samples"
CACHE_DIR = REPO / ".cache"  # its models/ subfolder holds the converted checkpoint
TEST_ADAPTER = "docqa-test-lora"
GROUNDED_ADAPTER = REPO / "finetune" / "adapters" / "docqa-grounded"  # shipped; answers by default
# Debian's Chromium, started so that it makes no connections of its own (the network here is closed).
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


DOCS_IMG = REPO / "docs" / "img"  # the README's screenshots, made by the browser tests


def screenshot_for_docs(page: object, name: str, css: str | None = None) -> None:
    """With ``DOCQA_SCREENSHOTS=1``, save a screenshot of a browser test's page as ``docs/img/NAME`` (the
    README shows them); ``css`` is added to the page first. Otherwise nothing: a test run writes no docs."""
    if os.environ.get("DOCQA_SCREENSHOTS") != "1":
        return
    DOCS_IMG.mkdir(exist_ok=True)
    if css:
        page.add_style_tag(content=css)  # type: ignore[attr-defined]
        page.wait_for_timeout(200)  # type: ignore[attr-defined]
    page.screenshot(path=str(DOCS_IMG / name))  # type: ignore[attr-defined]


def sample_files() -> list[Path]:
    """The sample corpus, without QUESTIONS.md (which lists the answers)."""
    return sorted(p for p in SAMPLES.iterdir() if p.is_file() and p.name != "QUESTIONS.md")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def closed_llm_url() -> str:
    """An OpenAI-style base URL where nothing listens: the model server is 'down'."""
    return f"http://127.0.0.1:{free_port()}/v1"


@dataclass
class VLLMServer:
    base_url: str
    settings: Settings  # a Settings whose llm.base_url and model.* point at this server
    server: object  # docqa.model_server.ModelServer
    adapter_name: str | None  # the random LoRA adapter it also serves (None without peft)


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
