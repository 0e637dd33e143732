"""LoRA training of the chat model on a docqa dataset. Reads top to bottom, like nanoGPT's train.py.

Why a plain loop and not trl's SFTTrainer: the three things that matter here are explicit and short in
a loop (the prompt rendered by the served model's chat template exactly as vLLM renders it, the loss
on the answer tokens only, and a resume that restores optimizer, schedule and data position), while
the loop also computes logits only at answer positions, which on a CPU saves most of the memory and a
good part of the time (the vocabulary is 49k wide; answers are a few dozen tokens of ~1000).

Output in ``<data_dir>/adapters/NAME/``: the peft adapter (``adapter_config.json``,
``adapter_model.safetensors``), ``docqa-train.json`` (base model, data hash, resolved hyperparameters,
metrics, timings), ``loss.png``, and ``checkpoints/step-NNNNNN/`` while training (removed at the end).
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finetune.data import DatasetError, dataset_hash, load_dataset
from rag.checkpoints import resolve_checkpoint
from rag.errors import ConfigError, DocqaError, MissingDependencyError
from rag.settings import FinetuneSettings, Settings

TRAIN_RECORD = "docqa-train.json"
CHECKPOINTS = "checkpoints"
KEEP_CHECKPOINTS = 2
MAX_EVAL_EXAMPLES = 64  # held-out examples scored for the loss curve by default; enough for a stable mean


class TrainingError(DocqaError):
    """Training cannot start or continue; the message says how to proceed."""


@dataclass
class Tokenized:
    input_ids: list[int]
    n_prompt: int  # tokens before the answer; the loss starts after them


def encode(tokenizer: Any, messages: Sequence[dict], target: str) -> Tokenized:
    """The prompt as vLLM renders it (chat template with the generation prompt, tokenised as text),
    followed by the answer and the template's end-of-turn tokens."""
    prompt = tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(
        [*messages, {"role": "assistant", "content": target}], tokenize=False, add_generation_prompt=False
    )
    if not full.startswith(prompt):
        raise TrainingError("the chat template does not render the prompt as a prefix of the conversation")
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(full[len(prompt) :], add_special_tokens=False)["input_ids"]
    return Tokenized(prompt_ids + answer_ids, len(prompt_ids))


def pick_device(precision: str) -> tuple[str, Any]:
    """CUDA when present (bf16 where supported), else the CPU in fp32 unless bf16 is asked for:
    on CPUs without bf16 matrix units, fp32 is the faster of the two."""
    import torch

    if precision not in ("auto", "fp32", "bf16"):
        raise ConfigError(f"precision '{precision}' is not one of auto, fp32, bf16")
    if torch.cuda.is_available():
        bf16_ok = torch.cuda.is_bf16_supported()
        use_bf16 = precision == "bf16" or (precision == "auto" and bf16_ok)
        return "cuda", torch.bfloat16 if use_bf16 else torch.float32
    return "cpu", torch.bfloat16 if precision == "bf16" else torch.float32


def batches(n_items: int, batch_size: int, seed: int, start: int) -> Callable[[], list[int]]:
    """Micro-batches of example indices from a seeded shuffle per epoch, from micro-batch ``start``
    on: the order depends only on (seed, position), so a resumed run sees the same data it would have."""
    state = {"k": start}

    def next_batch() -> list[int]:
        k = state["k"]
        state["k"] += 1
        out = []
        for pos in range(k * batch_size, (k + 1) * batch_size):
            epoch, i = divmod(pos, n_items)
            order = list(range(n_items))
            random.Random(seed * 100003 + epoch).shuffle(order)
            out.append(order[i])
        return out

    return next_batch


def collate(items: Sequence[Tokenized], pad_id: int, device: str) -> tuple[Any, Any, Any]:
    """Right-padded input ids, attention mask, and labels that are -100 except on answer tokens."""
    import torch

    width = max(len(t.input_ids) for t in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    labels = torch.full((len(items), width), -100, dtype=torch.long)
    for row, t in enumerate(items):
        n = len(t.input_ids)
        ids[row, :n] = torch.tensor(t.input_ids)
        mask[row, :n] = 1
        labels[row, t.n_prompt : n] = ids[row, t.n_prompt : n]
    return ids.to(device), mask.to(device), labels.to(device)


def answer_loss(model: Any, ids: Any, mask: Any, labels: Any) -> tuple[Any, int]:
    """Summed cross-entropy over answer tokens and their count. Logits are computed only where a
    label exists, never for the whole (batch, sequence, vocabulary) cube."""
    import torch.nn.functional as F

    causal_lm = model.get_base_model()
    hidden = causal_lm.model(input_ids=ids, attention_mask=mask).last_hidden_state
    targets = labels[:, 1:]
    where = targets != -100
    logits = causal_lm.lm_head(hidden[:, :-1][where]).float()
    return F.cross_entropy(logits, targets[where], reduction="sum"), int(where.sum())


def heldout_loss(model: Any, data: Sequence[Tokenized], batch_size: int, pad_id: int, device: str) -> float:
    import torch

    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(data), batch_size):
            loss, n = answer_loss(model, *collate(data[i : i + batch_size], pad_id, device))
            total, count = total + float(loss), count + n
    model.train()
    return total / max(count, 1)


def lr_at(step: int, total: int, peak: float, warmup_ratio: float) -> float:
    """Linear warm-up, then cosine decay to a tenth of the peak."""
    warmup = max(1, int(total * warmup_ratio))
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def latest_checkpoint(out_dir: Path) -> Path | None:
    found = sorted((out_dir / CHECKPOINTS).glob("step-*"))
    complete = [p for p in found if (p / "state.json").exists()]
    return complete[-1] if complete else None


def save_checkpoint(out_dir: Path, model: Any, optimizer: Any, state: dict[str, Any]) -> Path:
    """Adapter, optimizer and loop state, written to a temporary folder then renamed into place, so a
    run killed while saving leaves the previous checkpoint as the latest complete one."""
    import torch

    root = out_dir / CHECKPOINTS
    final = root / f"step-{state['step']:06d}"
    tmp = root / f".tmp-{state['step']:06d}"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    (tmp / "state.json").write_text(json.dumps(state))
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    for old in sorted(root.glob("step-*"))[:-KEEP_CHECKPOINTS]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def plot_loss(path: Path, history: list[dict[str, float]], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [(h["step"], h["train_loss"]) for h in history if "train_loss" in h]
    held = [(h["step"], h["heldout_loss"]) for h in history if "heldout_loss" in h]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=110)
    if train:
        ax.plot(*zip(*train, strict=True), label="train (answer tokens)", alpha=0.7)
    if held:
        ax.plot(*zip(*held, strict=True), "o-", label="held-out")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def train(
    settings: Settings,
    data_path: Path,
    name: str,
    *,
    max_steps: int | None = None,
    base: Path | None = None,
    overrides: dict[str, Any] | None = None,
    precision: str = "auto",
    overwrite: bool = False,
    stop_after: int | None = None,
    eval_examples: int = MAX_EVAL_EXAMPLES,
    threads: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train (or resume) adapter ``name`` on ``data_path``; returns the record written to docqa-train.json.

    ``overrides`` replace FinetuneSettings fields for this run (the CLI flags); ``stop_after`` ends the
    run after that many steps of this invocation, as an interruption would (tests of resume use it).
    ``threads`` caps torch's CPU threads: on a shared, oversubscribed CPU one thread is several times
    faster than two that spin waiting for each other.
    """
    try:
        import torch
        from peft import LoraConfig, PeftModel, get_peft_model
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise MissingDependencyError(
            f"fine-tuning needs torch, transformers and peft ({exc}); install them with `pip install -e '.[finetune]'`"
        ) from exc

    # -- configuration: settings, then this run's flags --------------------------------------------------
    ft: FinetuneSettings = settings.finetune.model_copy(update={**(overrides or {})})
    total_steps = max_steps or ft.max_steps
    if not name or "/" in name or name.startswith("."):
        raise ConfigError(f"invalid adapter name '{name}': use letters, digits, '-', '_' or '.'")
    if ft.lora_r > settings.model.max_lora_rank:
        raise ConfigError(
            f"LoRA rank {ft.lora_r} exceeds the model server's max_lora_rank {settings.model.max_lora_rank}: "
            "lower DOCQA_FINETUNE_LORA_R or raise DOCQA_MODEL_MAX_LORA_RANK"
        )
    out_dir = settings.adapters_dir / name
    record_path = out_dir / TRAIN_RECORD
    data_sha = dataset_hash(data_path)
    if overwrite:
        shutil.rmtree(out_dir, ignore_errors=True)
    elif record_path.exists():
        raise TrainingError(
            f"adapter '{name}' is already trained ({out_dir}); pass --overwrite to replace it or choose a new --name"
        )
    resume_from = latest_checkpoint(out_dir)
    if resume_from is not None:
        previous = json.loads((resume_from / "state.json").read_text())
        if previous["data_sha256"] != data_sha:
            raise TrainingError(f"{out_dir} holds checkpoints of a run on other data; delete it or choose a new --name")
    torch.manual_seed(ft.seed)
    random.seed(ft.seed)
    if threads:
        torch.set_num_threads(threads)

    # -- data: the dataset's train and held-out examples, tokenised as the served model sees them -------
    header, examples = load_dataset(data_path)
    if base is None:
        base = Path(resolve_checkpoint(settings))
    base = Path(base).resolve()
    device, dtype = pick_device(precision)
    tokenizer = AutoTokenizer.from_pretrained(base)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    too_long = 0
    train_set: list[Tokenized] = []
    heldout_set: list[Tokenized] = []
    for ex in examples:
        tok = encode(tokenizer, ex["messages"], ex["target"])
        if len(tok.input_ids) > ft.max_seq_len:
            too_long += 1  # dropped, not truncated: a cut prompt would teach a context the model never sees
            continue
        (train_set if ex["split"] == "train" else heldout_set).append(tok)
    if not train_set:
        raise DatasetError(
            f"{data_path} has no training example within max_seq_len={ft.max_seq_len} tokens "
            f"({too_long} too long); raise --max-seq-len or build with fewer distractors"
        )
    heldout_set = heldout_set[:eval_examples]
    train_tokens = sum(len(t.input_ids) for t in train_set)

    # -- model: the base checkpoint with LoRA on the configured projections ---------------------------
    model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype).to(device)
    model.config.use_cache = False
    if resume_from is not None:
        model = PeftModel.from_pretrained(model, resume_from, is_trainable=True)
    else:
        lora = LoraConfig(
            r=ft.lora_r,
            lora_alpha=ft.lora_alpha,
            lora_dropout=ft.lora_dropout,
            target_modules=list(ft.target_modules),
            bias="none",  # vLLM serves bias-free adapters only
            task_type="CAUSAL_LM",
        )
        model = get_peft_model(model, lora)
    model.peft_config["default"].base_model_name_or_path = str(base)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=ft.learning_rate, weight_decay=0.0)

    # -- resume: optimizer, loop state and data position from the latest complete checkpoint ----------
    step, history, elapsed, seen_tokens = 0, [], 0.0, 0
    if resume_from is not None:
        optimizer.load_state_dict(torch.load(resume_from / "optimizer.pt", weights_only=True))
        state = json.loads((resume_from / "state.json").read_text())
        step, history, elapsed, seen_tokens = state["step"], state["history"], state["elapsed"], state["tokens"]
    next_batch = batches(len(train_set), ft.batch_size, ft.seed, start=step * ft.grad_accum)
    if step == 0 and heldout_set:
        history.append({"step": 0, "heldout_loss": heldout_loss(model, heldout_set, ft.batch_size, pad_id, device)})

    def checkpoint_state() -> dict[str, Any]:
        return {"step": step, "history": history, "elapsed": elapsed, "tokens": seen_tokens, "data_sha256": data_sha}

    # -- the loop ----------------------------------------------------------------------------------------
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total_steps, initial=step, desc=f"finetune {name}", unit="step", dynamic_ncols=True)
    steps_this_run = 0
    t_start = time.perf_counter()
    while step < total_steps:
        lr = lr_at(step, total_steps, ft.learning_rate, ft.warmup_ratio)
        for group in optimizer.param_groups:
            group["lr"] = lr
        micro = [[train_set[i] for i in next_batch()] for _ in range(ft.grad_accum)]
        # Normalise by the answer tokens of the whole step, so long answers weigh what they contain.
        n_answer = sum(len(t.input_ids) - t.n_prompt for batch in micro for t in batch)
        step_loss = 0.0
        for batch in micro:
            loss, _ = answer_loss(model, *collate(batch, pad_id, device))
            (loss / max(n_answer, 1)).backward()
            step_loss += float(loss.detach())
            seen_tokens += sum(len(t.input_ids) for t in batch)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        steps_this_run += 1
        entry: dict[str, float] = {"step": step, "train_loss": step_loss / max(n_answer, 1), "lr": lr}
        if heldout_set and (step % ft.eval_every == 0 or step == total_steps):
            entry["heldout_loss"] = heldout_loss(model, heldout_set, ft.batch_size, pad_id, device)
        history.append(entry)
        if bar is not None:
            shown = {"loss": f"{entry['train_loss']:.3f}"}
            last_held = next((h["heldout_loss"] for h in reversed(history) if "heldout_loss" in h), None)
            if last_held is not None:
                shown["heldout"] = f"{last_held:.3f}"
            bar.set_postfix(shown)
            bar.update(1)
        if step % ft.save_every == 0 and step < total_steps:
            elapsed += time.perf_counter() - t_start
            t_start = time.perf_counter()
            save_checkpoint(out_dir, model, optimizer, checkpoint_state())
        if stop_after is not None and steps_this_run >= stop_after and step < total_steps:
            elapsed += time.perf_counter() - t_start
            save_checkpoint(out_dir, model, optimizer, checkpoint_state())
            if bar is not None:
                bar.close()
            return {"status": "interrupted", "step": step, "out_dir": str(out_dir)}
    elapsed += time.perf_counter() - t_start
    if bar is not None:
        bar.close()

    # -- save: adapter, the resolved configuration beside it, the loss curve ---------------------------
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    held = [h["heldout_loss"] for h in history if "heldout_loss" in h]
    train_losses = [h["train_loss"] for h in history if "train_loss" in h]
    tail = train_losses[-max(1, len(train_losses) // 10) :]
    import peft
    import transformers

    record = {
        "name": name,
        "status": "complete",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "base_model": settings.model.source,
        "base_checkpoint": str(base),
        "served_base_name": settings.model.served_name,
        "data": {
            "path": str(Path(data_path).resolve()),
            "sha256": data_sha,
            "examples_sha256": header["examples_sha256"],
            "collection": header.get("collection"),
            "train_examples": len(train_set),
            "heldout_examples_scored": len(heldout_set),
            "dropped_too_long": too_long,
            "train_tokens": train_tokens,
        },
        "hyperparameters": {**ft.model_dump(), "max_steps": total_steps},
        "device": device,
        "precision": str(dtype).removeprefix("torch."),
        "metrics": {
            "heldout_loss_start": held[0] if held else None,
            "heldout_loss_end": held[-1] if held else None,
            "train_loss_end": sum(tail) / len(tail) if tail else None,
            "epochs": seen_tokens / max(train_tokens, 1),
        },
        "timings": {
            "seconds": round(elapsed, 1),
            "steps_per_s": round(total_steps / max(elapsed, 1e-9), 4),
            "tokens_per_s": round(seen_tokens / max(elapsed, 1e-9), 1),
            "resumed_from_step": int(resume_from.name.split("-")[1]) if resume_from else None,
        },
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__},
        "history": history,
    }
    plot_loss(out_dir / "loss.png", history, f"{name}: LoRA r={ft.lora_r} on {base.name}")
    (out_dir / TRAIN_RECORD).write_text(json.dumps(record, indent=2))
    shutil.rmtree(out_dir / CHECKPOINTS, ignore_errors=True)
    return record
