"""`docqa finetune data|train|eval|register|squad`: teach the chat model the domain with a LoRA adapter."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from docqa.model_server import prepare
from docqa.services import build
from docqa.serving import serving
from finetune.data import build_dataset
from finetune.evaluate import METRIC_LABELS, evaluate
from finetune.squad import write_squad_qa
from finetune.train import TRAIN_RECORD, train
from rag.adapters import register_adapter
from rag.errors import ConfigError
from rag.settings import Settings, load_settings

app = typer.Typer(no_args_is_help=True, help="LoRA fine-tuning: build data, train, evaluate, register.")
out = Console()
err = Console(stderr=True)


def _settings() -> Settings:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the checkpoint is local; never reach for a model hub
    return load_settings()


@app.command("data")
def data_cmd(
    out_path: Annotated[Path, typer.Option("--out", help="Dataset file to write (JSONL).")],
    qa: Annotated[Path | None, typer.Option("--qa", help="Q/A JSONL: question, answer, optional source.")] = None,
    feedback: Annotated[
        Path | None, typer.Option("--feedback", help="Staff feedback export (JSONL); answers rated up are used.")
    ] = None,
    synthetic: Annotated[
        int, typer.Option("--synthetic", help="Also generate up to N Q/A pairs from the indexed chunks.")
    ] = 0,
    collection: Annotated[str | None, typer.Option("--collection", "-c", help="Collection to retrieve from.")] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model", help="Served model writing synthetic pairs (default: the base, or the adapter served alone)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the header as JSON.")] = False,
) -> None:
    """Build a RAFT training set: each question with the context the retriever really gives (gold chunk
    among distractors), the answer cited like [1], some decline examples, split by source document.

    Examples:
      docqa finetune data --qa qa.jsonl --collection default --out data/ft/train.jsonl
      docqa finetune data --feedback feedback.jsonl --qa qa.jsonl --out ft.jsonl
      docqa finetune data --synthetic 200 --collection manuals --out ft.jsonl
    """

    settings = _settings()
    services = build(settings)
    name = collection or settings.collection
    report = build_dataset(services, name, out_path, qa=qa, feedback=feedback, synthetic=synthetic, model=model)
    if as_json:
        print(json.dumps(report.header, indent=2))
        return
    counts = report.header["counts"]
    out.print(f"wrote {out_path}: {len(report.examples)} examples " + ", ".join(f"{k}={v}" for k, v in counts.items()))
    if report.skipped:
        reasons: dict[str, int] = {}
        for s in report.skipped:
            reasons[s["reason"]] = reasons.get(s["reason"], 0) + 1
        err.print("skipped: " + "; ".join(f"{n} × {r}" for r, n in reasons.items()), highlight=False)


@app.command("train")
def train_cmd(
    data: Annotated[Path, typer.Option("--data", help="Dataset built by `docqa finetune data`.")],
    name: Annotated[str, typer.Option("--name", help="Adapter name; written to DATA_DIR/adapters/NAME.")],
    max_steps: Annotated[int | None, typer.Option("--max-steps", help="Training steps (default: settings).")] = None,
    lora_r: Annotated[int | None, typer.Option("--lora-r", help="LoRA rank.")] = None,
    learning_rate: Annotated[float | None, typer.Option("--lr", help="Peak learning rate.")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="Examples per micro-batch.")] = None,
    grad_accum: Annotated[int | None, typer.Option("--grad-accum", help="Micro-batches per step.")] = None,
    max_seq_len: Annotated[int | None, typer.Option("--max-seq-len", help="Longest example, in tokens.")] = None,
    precision: Annotated[str, typer.Option("--precision", help="auto (bf16 on a capable GPU), fp32 or bf16.")] = "auto",
    base: Annotated[Path | None, typer.Option("--base", help="Base checkpoint (default: the prepared model).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an adapter of the same name.")] = False,
    threads: Annotated[
        int | None, typer.Option("--threads", help="CPU threads for torch (1 is fastest on a busy machine).")
    ] = None,
) -> None:
    """Train a LoRA adapter on the answer tokens, with the model's chat template. An interrupted run
    resumes from its latest checkpoint when started again with the same --data and --name.

    Examples:
      docqa finetune train --data ft.jsonl --name support-v1
      docqa finetune train --data ft.jsonl --name quick --max-steps 30 --lr 3e-4
      DOCQA_FINETUNE_LORA_R=8 docqa finetune train --data ft.jsonl --name small
    """

    settings = _settings()
    overrides: dict[str, Any] = {
        k: v
        for k, v in {
            "lora_r": lora_r,
            "learning_rate": learning_rate,
            "batch_size": batch_size,
            "grad_accum": grad_accum,
            "max_seq_len": max_seq_len,
        }.items()
        if v is not None
    }
    if base is None:
        base = prepare(settings)
    record = train(
        settings, data, name, max_steps=max_steps, base=base, overrides=overrides, precision=precision,
        overwrite=overwrite, threads=threads,
    )  # fmt: skip
    m, t = record["metrics"], record["timings"]
    out.print(
        f"adapter '{name}' in {settings.adapters_dir / name}: held-out loss {m['heldout_loss_start']} → "
        f"{m['heldout_loss_end']}, {t['seconds']}s, {t['tokens_per_s']} tokens/s. "
        f"Next: `docqa finetune eval --adapter {name} --serve`, then `docqa finetune register {name}`."
    )


@app.command("eval")
def eval_cmd(
    adapter: Annotated[str, typer.Option("--adapter", help="Adapter name (trained under DATA_DIR/adapters).")],
    data: Annotated[Path | None, typer.Option("--data", help="Dataset (default: the one it was trained on).")] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="At most N questions of each kind.")] = None,
    serve: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Start a private vLLM with base + adapter for this run.")
    ] = False,
    out_path: Annotated[Path | None, typer.Option("--out", help="JSON result (default: beside the adapter).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON summary instead of the table.")] = False,
) -> None:
    """Base model and adapter answer the held-out questions with the same retrieval: token F1, exact
    match, citing the gold chunk, declining when the context lacks the answer.

    Examples:
      docqa finetune eval --adapter support-v1 --serve
      docqa finetune eval --adapter support-v1 --limit 50 --json
    """

    settings = _settings()
    adapter_dir = settings.adapters_dir / adapter
    record_file = adapter_dir / TRAIN_RECORD
    if not record_file.exists():
        raise ConfigError(
            f"no trained adapter '{adapter}' in {settings.adapters_dir}; train it with `docqa finetune train`"
        )
    record = json.loads(record_file.read_text())
    data = data or Path(record["data"]["path"])
    models = [settings.llm_model_name, adapter]
    if serve:
        with serving(settings, {adapter: adapter_dir}) as served:
            result = evaluate(build(served), data, [served.llm_model_name, adapter], limit=limit)
    else:
        result = evaluate(build(settings), data, models, limit=limit)
    target = out_path or adapter_dir / "eval.json"
    target.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    if as_json:
        print(json.dumps({k: v for k, v in result.items() if k not in ("answers", "declines")}, indent=2))
        return
    table = Table(title=f"held-out: {result['answerable']} answerable, {result['unanswerable']} unanswerable")
    table.add_column("metric")
    for model in result["models"]:
        table.add_column(model, justify="right")
    for key, label in METRIC_LABELS.items():
        values = [result["summary"][m][key] for m in result["models"]]
        table.add_row(label, *("–" if v is None else f"{v:.3f}" for v in values))
    out.print(table)
    err.print(f"wrote {target}", highlight=False)


@app.command("register")
def register_cmd(
    name: Annotated[str, typer.Argument(help="Adapter name (a folder under DATA_DIR/adapters), or see --path.")],
    path: Annotated[Path | None, typer.Option("--path", help="Adapter folder elsewhere (peft format).")] = None,
) -> None:
    """Add the adapter to the model server's LoRA list; after a restart of the server it is selectable
    as the model name in `docqa ask --model NAME`, the API's `model` field and the UI's model menu.

    Examples:
      docqa finetune register support-v1
      docqa finetune register legal --path /srv/adapters/legal-lora
      docqa model stop && docqa model serve --detach
    """

    settings = _settings()
    stored = register_adapter(settings, name, path or settings.adapters_dir / name)
    out.print(
        f"registered '{name}' → {stored}. Restart the model server to load it: "
        "`docqa model stop && docqa model serve --detach`."
    )


@app.command("squad")
def squad_cmd(
    squad: Annotated[Path, typer.Option("--squad", help="SQuAD v1.1 JSON file.")],
    work_dir: Annotated[Path, typer.Option("--work-dir", help="Where the paragraph files and Q/A file go.")],
    collection: Annotated[str, typer.Option("--collection", "-c", help="Collection to ingest into.")] = "squad",
    per_article: Annotated[
        int | None, typer.Option("--questions-per-article", help="Sample N questions per article.")
    ] = None,
) -> None:
    """Turn SQuAD into a collection (one document per paragraph) and a Q/A file grouped by article,
    ready for `docqa finetune data` (which then splits train and held-out by article).

    Examples:
      docqa finetune squad --squad shared/eval/squad-dev/squad.json --work-dir data/runs/squad
      docqa finetune data --qa data/runs/squad/squad-qa.jsonl -c squad --out data/runs/squad/raft.jsonl
    """

    settings = _settings()
    result = write_squad_qa(squad, work_dir, questions_per_article=per_article)
    report = build(settings).ingestor.ingest([result.docs_dir], collection)
    out.print(
        f"{result.articles} articles, {result.paragraphs} paragraphs into '{collection}' "
        f"({len(report.added)} added); {result.questions} questions in {result.qa_path}"
    )


def register_commands(root: typer.Typer) -> None:
    """`docqa finetune ...`."""
    root.add_typer(app, name="finetune", help="LoRA fine-tuning: build data, train, evaluate, register.")
