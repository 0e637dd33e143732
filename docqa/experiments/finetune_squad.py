"""The recorded experiment: an adapter trained on SQuAD articles against the base model on held-out articles.

    .venv/bin/python -m docqa.experiments.finetune_squad --out bench/results/finetune-squad.json

Stages (each skipped when its output exists, so a crashed run continues): paragraphs into a collection,
the RAFT dataset (split by article), training, then a private vLLM serving base and adapter for the
side-by-side evaluation. Settings for a CPU budget: 3 passages per prompt (top_k=3 at evaluation too,
so training and answering see the same context size) and 64-token answers (SQuAD answers are short).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--squad", type=Path, default=Path("/work/shared/eval/squad-dev/squad.json"))
    ap.add_argument("--work", type=Path, default=REPO / "data" / "runs" / "finetune-squad")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "finetune-squad.json")
    ap.add_argument("--model-source", default=str(REPO / ".cache" / "models" / "SmolLM2-135M-Instruct"))
    ap.add_argument("--questions-per-article", type=int, default=12)
    ap.add_argument("--max-steps", type=int, default=12)
    ap.add_argument("--eval-limit", type=int, default=20)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--name", default="squad-lora")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 on a busy machine).")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from docqa.services import build
    from docqa.serving import serving
    from finetune.data import build_dataset
    from finetune.evaluate import evaluate
    from finetune.squad import write_squad_qa
    from finetune.train import TRAIN_RECORD, train
    from rag.settings import Settings

    work = args.work.resolve()
    settings = Settings(
        data_dir=work / "data",
        model={"source": args.model_source, "max_model_len": 2048, "venv": REPO / ".venv-vllm"},
        retrieval={"top_k": 3},
        llm={"max_tokens": 64, "timeout_s": 600},
        finetune={
            "distractors": 2,
            "batch_size": 1,  # two examples a step in two micro-batches: half the activation memory
            "grad_accum": 2,
            "learning_rate": args.lr,
            "max_seq_len": 1024,
            "eval_every": 8,
            "save_every": 4,
        },
    )
    timings: dict[str, float] = {}
    services = build(settings)
    collection = "squad"
    t = time.perf_counter()
    squad = write_squad_qa(args.squad, work, questions_per_article=args.questions_per_article)
    if collection not in {c.name for c in services.collections()}:
        report = services.ingestor.ingest([squad.docs_dir], collection)
        print(f"ingested {len(report.added)} paragraphs in {report.seconds:.0f}s", flush=True)
    timings["ingest_s"] = round(time.perf_counter() - t, 1)

    dataset = work / "squad-raft.jsonl"
    t = time.perf_counter()
    if not dataset.exists():
        built = build_dataset(services, collection, dataset, qa=squad.qa_path)
        print(f"dataset: {built.header['counts']} skipped {len(built.skipped)}", flush=True)
    timings["dataset_s"] = round(time.perf_counter() - t, 1)

    t = time.perf_counter()
    record_path = settings.adapters_dir / args.name / TRAIN_RECORD
    if record_path.exists():
        record = json.loads(record_path.read_text())
    else:
        record = train(settings, dataset, args.name, max_steps=args.max_steps, eval_examples=12, threads=args.threads)
    timings["train_s"] = round(time.perf_counter() - t, 1)
    print(f"trained: {record['metrics']} {record['timings']}", flush=True)

    t = time.perf_counter()
    with serving(settings, {args.name: settings.adapters_dir / args.name}) as served:
        done: dict[str, int] = {}

        def progress(model: str) -> None:
            done[model] = done.get(model, 0) + 1
            if done[model] % 10 == 0:
                print(f"evaluated {done[model]} questions with {model} ({time.perf_counter() - t:.0f} s)", flush=True)

        models = [served.llm_model_name, args.name]
        result = evaluate(build(served), dataset, models, limit=args.eval_limit, on_item=progress)
    timings["evaluate_s"] = round(time.perf_counter() - t, 1)
    out = {
        "experiment": "finetune-squad",
        "squad": {"articles": squad.articles, "paragraphs": squad.paragraphs, "questions_used": squad.questions},
        "train": {k: record[k] for k in ("hyperparameters", "metrics", "timings", "data", "device", "precision")},
        "eval": {k: v for k, v in result.items() if k not in ("answers", "declines")},
        "timings": timings,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    (work / "eval-answers.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(out["eval"]["summary"], indent=2))


if __name__ == "__main__":
    main()
