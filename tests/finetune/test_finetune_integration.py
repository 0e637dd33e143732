"""End to end on the CPU: RAFT data from the sample corpus, a short LoRA run (interrupted and resumed),
the adapter served by a real vLLM next to the base model, and the side-by-side evaluation.

Kept short for 2 cores: one distractor per example, batches of 2, two dozen steps; the point is that
the held-out loss falls and the served adapter answers, not that 135M parameters learn the company.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from docqa.services import Services
from docqa.serving import serving
from finetune.data import build_dataset, load_dataset
from finetune.evaluate import evaluate
from finetune.synthetic import synthesize
from finetune.train import CHECKPOINTS, TRAIN_RECORD, train
from rag.adapters import register_adapter, registered_adapters
from rag.settings import Settings
from rag.types import Question

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ADAPTER = "samples-lora"
STEPS = 24


@pytest.fixture(scope="module")
def trained(ft_data_dir: Path, ft_base_model: Path, embedder, tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("ft-run")
    # The sample index is shared read-only; adapters and the dataset go to this test's own data dir.
    settings = Settings(
        data_dir=root / "data",
        model={"source": str(ft_base_model), "max_model_len": 2048, "venv": Path(".venv-vllm").resolve()},
        llm={"max_tokens": 48},
        finetune={
            "distractors": 1,
            "decline_share": 0.2,
            "heldout_share": 0.25,
            "batch_size": 2,
            "grad_accum": 1,
            "learning_rate": 1e-3,
            "lora_r": 8,
            "lora_alpha": 16,
            "max_seq_len": 768,
            "eval_every": 8,
            "save_every": 8,
        },
    )
    (root / "data").mkdir()
    (root / "data" / "index").symlink_to(ft_data_dir / "index")
    services = Services(settings, embedder=embedder)
    dataset = root / "samples-raft.jsonl"
    build_dataset(services, "samples", dataset, qa=ft_data_dir.parent / "qa.jsonl")
    # Interrupted after 12 steps (a checkpoint is left), then started again: it must resume, not restart.
    first = train(
        settings, dataset, ADAPTER, max_steps=STEPS, stop_after=12, eval_examples=8, progress=False
    )
    assert first["status"] == "interrupted"
    assert (settings.adapters_dir / ADAPTER / CHECKPOINTS / "step-000012" / "optimizer.pt").exists()
    record = train(settings, dataset, ADAPTER, max_steps=STEPS, eval_examples=8, progress=False)
    return {"settings": settings, "services": services, "dataset": dataset, "record": record}


def test_training_lowers_heldout_loss_and_writes_the_adapter_folder(trained: dict) -> None:
    settings, record = trained["settings"], trained["record"]
    out = settings.adapters_dir / ADAPTER
    assert record["timings"]["resumed_from_step"] == 12
    steps = [h["step"] for h in record["history"] if "train_loss" in h]
    assert steps == list(range(1, STEPS + 1))  # every step once, across the interruption
    held = [h["heldout_loss"] for h in record["history"] if "heldout_loss" in h]
    assert len(held) >= 3 and held[-1] < held[0] * 0.9, held
    saved = json.loads((out / TRAIN_RECORD).read_text())
    header, _ = load_dataset(trained["dataset"])
    assert saved["data"]["examples_sha256"] == header["examples_sha256"] and len(saved["data"]["sha256"]) == 64
    assert saved["base_checkpoint"] == str(Path(settings.model.source).resolve())
    assert saved["hyperparameters"]["lora_r"] == 8 and saved["timings"]["tokens_per_s"] > 0
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["r"] == 8 and config["base_model_name_or_path"] == saved["base_checkpoint"]
    assert (out / "adapter_model.safetensors").stat().st_size > 0
    assert (out / "loss.png").read_bytes()[:4] == b"\x89PNG"
    assert not (out / CHECKPOINTS).exists()


def test_vllm_serves_the_adapter_beside_the_base_model(trained: dict, embedder) -> None:
    settings: Settings = trained["settings"]
    register_adapter(settings, ADAPTER, settings.adapters_dir / ADAPTER)
    assert ADAPTER in registered_adapters(settings)
    question = "What is the battery capacity of the Sweep S3?"
    with serving(settings, registered_adapters(settings)) as served:
        services = Services(served, embedder=embedder)
        assert {served.llm_model_name, ADAPTER} <= set(services.generator.models())
        answers = {}
        for model in (served.llm_model_name, ADAPTER):
            answer = services.pipeline.ask(Question(question, "samples", model=model))
            assert answer.model == model and answer.answer
            answers[model] = answer.answer
        # The raw API names the adapter as the model that answered, and its answer differs from the base's.
        reply = httpx.post(
            f"{served.llm.base_url}/chat/completions",
            json={"model": ADAPTER, "messages": [{"role": "user", "content": question}], "max_tokens": 16},
            timeout=120,
        ).json()
        assert reply["model"] == ADAPTER and reply["choices"][0]["message"]["content"]
        assert answers[ADAPTER] != answers[served.llm_model_name]

        result = evaluate(services, trained["dataset"], [served.llm_model_name, ADAPTER], limit=2)

        # Synthetic pairs from the served base model: every kept pair is one the retriever answers.
        syn = synthesize(services, "samples", 1, model=served.llm_model_name)
        stats = syn.stats
        assert stats["asked"] >= 1
        assert stats["asked"] == stats["unparsed"] + stats["not_extractive"] + stats["not_retrieved"] + stats["kept"]
        reader = services.reader("samples")
        for item in syn.items:
            hits = services.retriever.search(reader, item.question).hits
            assert any(h.chunk.text == item.gold_text for h in hits)
    for model in (served.llm_model_name, ADAPTER):
        summary = result["summary"][model]
        assert 0.0 <= summary["f1"] <= 1.0 and summary["cites_gold"] is not None
    assert result["answerable"] >= 1 and all(ADAPTER in row for row in result["answers"])
