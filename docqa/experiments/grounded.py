"""The grounded-answer adapter docqa ships: how it is made (``make adapter``).

    .venv/bin/python -m docqa.experiments.grounded --max-steps 240

Data the project may use: the *tune* half of ``shared/eval/squad-dev`` (``article_split``; the other half
is what ``docqa eval answers`` measures on, so the adapter never sees those articles), and generated
support documents with known answers (``finetune.support_corpus``). Both go through the project's own
pipeline: one collection by the real ingest, RAFT examples by ``finetune.data`` with the exact prompt
the answer pipeline sends (the gold passage among retrieved distractors, a share without it that must
be declined), LoRA training by ``finetune.train``. The adapter is then stored in 16-bit and copied with
its ``docqa-train.json`` and ``loss.png`` to ``finetune/adapters/<name>/``, where ``make run`` registers it.

Stages are skipped when their output exists, so an interrupted run continues.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "finetune" / "adapters"
NAME = "docqa-grounded"


def half_precision(src: Path, dst: Path, base_name: str) -> None:
    """Copy a peft adapter directory with its weights cast to float16 (half the size, served the same);
    the config names the base model by its public id, not this machine's path."""
    import torch
    from safetensors.torch import load_file, save_file

    dst.mkdir(parents=True, exist_ok=True)
    for name in ("adapter_config.json", "docqa-train.json", "loss.png"):
        if (src / name).exists():
            shutil.copy2(src / name, dst / name)
    tensors = load_file(str(src / "adapter_model.safetensors"))
    save_file({k: v.to(torch.float16).contiguous() for k, v in tensors.items()}, str(dst / "adapter_model.safetensors"))
    config = json.loads((dst / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = base_name
    (dst / "adapter_config.json").write_text(json.dumps(config, indent=2) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--squad", type=Path, default=REPO.parent / "shared" / "eval" / "squad-dev" / "squad.json")
    ap.add_argument("--work", type=Path, default=REPO / "data" / "runs" / "grounded")
    ap.add_argument("--name", default=NAME)
    ap.add_argument("--out", type=Path, default=SHIPPED)
    ap.add_argument("--model-source", default=None, help="Base model (default: settings' model.source).")
    ap.add_argument(
        "--base-name", default="HuggingFaceTB/SmolLM2-135M-Instruct", help="Public id of the base, for the config."
    )
    ap.add_argument("--questions-per-article", type=int, default=60)
    ap.add_argument("--companies", type=int, default=12)
    ap.add_argument("--max-steps", type=int, default=240)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument(
        "--decline-share",
        type=float,
        default=0.1,
        help="Share of examples whose context lacks the answer (target: the decline sentence). The calibrated "
        "decline model catches out-of-index questions, so the adapter needs only enough to not improvise.",
    )
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-only", action="store_true", help="Stop after building the RAFT dataset.")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from docqa.services import build
    from finetune.data import build_dataset
    from finetune.squad import write_squad_qa
    from finetune.support_corpus import write_support_corpus
    from finetune.train import TRAIN_RECORD, train
    from rag.checkpoints import resolve_checkpoint
    from rag.evaluation.datasets import article_split, squad_titles
    from rag.settings import Settings, load_settings

    work = args.work.resolve()
    base = load_settings()
    settings = Settings(
        data_dir=work / "data",
        model={**base.model.model_dump(), **({"source": args.model_source} if args.model_source else {})},
        retrieval={"top_k": 3},
        finetune={
            "lora_r": args.rank,
            "lora_alpha": 2 * args.rank,
            "distractors": 2,
            "decline_share": args.decline_share,
            "heldout_share": 0.05,
            "batch_size": 1,
            "grad_accum": 4,
            "learning_rate": args.lr,
            "max_seq_len": 1024,
            "eval_every": 25,
            "save_every": 10,
            "seed": args.seed,
        },
    )
    if settings.model.source.startswith("bundled:"):
        # The prepared bundled checkpoint lives under the main data directory, not this run's.
        main = base.with_overrides(model__source=settings.model.source)
        settings = settings.with_overrides(model__source=str(resolve_checkpoint(main)))
    services = build(settings)
    timings: dict[str, float] = {}

    t = time.perf_counter()
    tune, test = article_split(squad_titles(args.squad), args.seed)
    squad = write_squad_qa(
        args.squad, work, questions_per_article=args.questions_per_article, exclude=test, seed=args.seed
    )
    support = write_support_corpus(work, companies=args.companies, seed=args.seed)
    qa = work / "qa.jsonl"
    qa.write_text(squad.qa_path.read_text(encoding="utf-8") + support.qa_path.read_text(encoding="utf-8"))
    collection = "grounded"
    if collection not in {c.name for c in services.collections()}:
        report = services.ingestor.ingest([squad.docs_dir, support.docs_dir], collection)
        print(f"ingested {len(report.added)} documents in {report.seconds:.0f}s", flush=True)
    timings["ingest_s"] = round(time.perf_counter() - t, 1)

    dataset = work / "raft.jsonl"
    t = time.perf_counter()
    if not dataset.exists():
        built = build_dataset(services, collection, dataset, qa=qa)
        print(f"dataset: {built.header['counts']} skipped {len(built.skipped)}", flush=True)
    timings["dataset_s"] = round(time.perf_counter() - t, 1)
    if args.data_only:
        return

    record_path = settings.adapters_dir / args.name / TRAIN_RECORD
    if record_path.exists():
        record = json.loads(record_path.read_text())
    else:
        record = train(settings, dataset, args.name, max_steps=args.max_steps, eval_examples=24, threads=args.threads)
    print(f"trained: {record['metrics']} {record['timings']}", flush=True)
    record["recipe"] = {
        "command": f"python -m docqa.experiments.grounded --max-steps {args.max_steps}"
        + f" --decline-share {args.decline_share}"
        + (f" --model-source {args.model_source} --name {args.name}" if args.model_source else ""),
        "squad_tune_articles": tune,
        "squad_questions_per_article": args.questions_per_article,
        "support_documents": support.documents,
        "support_questions": support.questions,
        "stage_timings": timings,
    }
    (settings.adapters_dir / args.name / TRAIN_RECORD).write_text(json.dumps(record, indent=2))
    half_precision(settings.adapters_dir / args.name, args.out / args.name, args.base_name)
    print(f"adapter written to {args.out / args.name}", flush=True)


if __name__ == "__main__":
    main()
