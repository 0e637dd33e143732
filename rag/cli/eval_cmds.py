"""`docqa eval`: measure retrieval and answers on public data sets, on a fresh collection each run."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from rag.errors import ConfigError
from rag.services import build
from rag.settings import Settings, load_settings

app = typer.Typer(no_args_is_help=True, help="Evaluate retrieval and answers (BEIR, SQuAD).")
out = Console()
err = Console(stderr=True)


def _settings() -> Settings:
    # Deterministic runs: greedy decoding and a fixed seed, whatever the environment says.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return load_settings(llm__temperature=0.0, llm__seed=0)


def _emit(result: dict, out_dir: Path | None, as_json: bool, metrics: tuple[str, ...], label: str) -> None:
    from rag.evaluation.report import render_markdown, write_report

    if out_dir is not None:
        paths = write_report(result, out_dir, label=label, metrics=metrics)
        err.print(f"wrote {', '.join(str(p) for p in paths.values())}", highlight=False)
    if as_json:
        print(json.dumps({k: v for k, v in result.items() if k != "markdown_extra"}, indent=2, ensure_ascii=False))
    else:
        out.print(render_markdown(result), highlight=False, markup=False)


@app.command("retrieval")
def retrieval(
    beir: Annotated[
        Path | None, typer.Option("--beir", help="BEIR directory: corpus.jsonl, queries.jsonl, qrels/test.tsv.")
    ] = None,
    squad: Annotated[
        Path | None, typer.Option("--squad", help="SQuAD v1.1 JSON: each paragraph becomes a document.")
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Keep result.json, result.md and result.png here.")
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="Score only the first N questions (quick runs).")] = None,
    work_dir: Annotated[
        Path | None, typer.Option("--work-dir", help="Write the generated documents here and keep them.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON result instead of the table.")] = False,
) -> None:
    """Score BM25, dense, hybrid (and hybrid + reranker when one is configured) side by side:
    nDCG@10, recall@100, MRR@10, hit@1 and hit@5, on a collection built by the real ingest.

    Examples:
      docqa eval retrieval --beir ../shared/eval/beir-msmarco-5k --out bench/results/eval-beir
      docqa eval retrieval --squad ../shared/eval/squad-dev/squad.json --limit 500
      DOCQA_RETRIEVAL_FUSION=rrf docqa eval retrieval --beir ../shared/eval/beir-msmarco-5k
    """
    from rag.evaluation.datasets import load_beir, load_squad
    from rag.evaluation.metrics import RANKING_METRICS
    from rag.evaluation.retrieval_eval import evaluate_retrieval
    from rag.evaluation.runner import fresh_collection, work_directory

    if (beir is None) == (squad is None):
        raise ConfigError("give exactly one of --beir DIR or --squad FILE")
    services = build(_settings())
    with work_directory(work_dir) as work:
        if beir is not None:
            evalset = load_beir(beir, work, max_queries=limit)
        else:
            evalset = load_squad(squad, work)
            if limit:
                evalset.queries = evalset.queries[:limit]
        err.print(f"ingesting {len(evalset.doc_ids)} documents from {evalset.name} ...", highlight=False)
        with fresh_collection(services, evalset.docs_dir, "retrieval") as built:
            err.print(f"{built.chunks} chunks in {built.ingest_s:.0f} s; scoring {len(evalset.in_index)} questions")
            result = evaluate_retrieval(services, evalset, built, progress=lambda m: err.print(m, highlight=False))
    _emit(result, out_dir, as_json, RANKING_METRICS, "variant")


@app.command("answers")
def answers(
    squad: Annotated[Path, typer.Option("--squad", help="SQuAD v1.1 JSON file.")],
    limit: Annotated[int, typer.Option("--limit", help="Questions about indexed articles to ask.")] = 200,
    held_out: Annotated[
        int | None, typer.Option("--held-out", help="Questions about held-out articles (default limit/4).")
    ] = None,
    holdout_articles: Annotated[int, typer.Option("--holdout-articles", help="Articles left out of the index.")] = 3,
    max_articles: Annotated[
        int | None, typer.Option("--max-articles", help="Use only the first N articles (quick runs).")
    ] = None,
    model: Annotated[str | None, typer.Option("--model", help="Served model name (base or a LoRA adapter).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the question sample and the held-out articles.")] = 0,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Keep result.json, result.md and result.png here.")
    ] = None,
    work_dir: Annotated[
        Path | None, typer.Option("--work-dir", help="Write the generated documents here and keep them.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON result instead of the table.")] = False,
) -> None:
    """Ask SQuAD questions through the real answering path (needs the model server) and score them:
    exact match and token F1, answers whose citations hold a gold answer, answers without a citation,
    and how often questions about held-out articles are declined. Temperature 0, fixed seeds.

    Examples:
      docqa model serve --detach
      docqa eval answers --squad ../shared/eval/squad-dev/squad.json --limit 200 --out bench/results/eval-answers
      docqa eval answers --squad ../shared/eval/squad-dev/squad.json --limit 50 --model my-adapter
    """
    from rag.evaluation.answer_eval import ANSWER_METRICS, evaluate_answers
    from rag.evaluation.datasets import load_squad
    from rag.evaluation.report import markdown_table
    from rag.evaluation.runner import fresh_collection, work_directory

    services = build(_settings())
    services.generator.check()  # before minutes of ingest: is the model server up?
    with work_directory(work_dir) as work:
        evalset = load_squad(squad, work, holdout_articles=holdout_articles, seed=seed, max_articles=max_articles)
        err.print(f"ingesting {len(evalset.doc_ids)} paragraphs (held out: {', '.join(evalset.held_out_articles)})")
        with fresh_collection(services, evalset.docs_dir, "answers") as built:
            result = evaluate_answers(
                services,
                evalset,
                built,
                limit=limit,
                held_out_limit=held_out,
                model=model,
                seed=seed,
                progress=lambda m: err.print(m, highlight=False),
            )
    curve = result.get("refusal_curve") or {}
    if curve:
        best = curve["best_threshold"]
        result["markdown_extra"] = (
            f"Refusal threshold (best dense cosine, all {curve['in_index_best_dense']['n']} in-index vs "
            f"{curve['held_out_best_dense']['n']} held-out questions): configured "
            f"{result['min_dense_score']}, best separation at {best['threshold']} "
            f"(held-out declined {best['held_out_declined']:.3f}, "
            f"in-index declined {best['in_index_declined']:.3f}).\n\n"
            + markdown_table(
                [
                    {"group": "in index", **curve["in_index_best_dense"]},
                    {"group": "held out", **curve["held_out_best_dense"]},
                ]
            )
        )
    _emit(result, out_dir, as_json, ANSWER_METRICS, "model")
