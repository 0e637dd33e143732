"""`docqa eval`: measure retrieval and answers on public data sets, on a fresh collection each run."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from docqa.services import build
from rag.errors import ConfigError
from rag.settings import Settings, load_settings

app = typer.Typer(no_args_is_help=True, help="Evaluate retrieval and answers (BEIR, SQuAD, your own question sets).")
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
    squad: Annotated[Path | None, typer.Option("--squad", help="SQuAD v1.1 JSON file.")] = None,
    questions: Annotated[
        Path | None,
        typer.Option("--questions", help="Your own question file (JSON, format above); needs --docs."),
    ] = None,
    docs: Annotated[
        Path | None, typer.Option("--docs", help="The folder of documents the --questions were written from.")
    ] = None,
    split: Annotated[
        str,
        typer.Option(
            "--split",
            help="dev (read freely while building), locked (run to report a finished change; never read to "
            "write a rule) or all. --questions: by each question's 'split'; --squad: by a hash of its id.",
        ),
    ] = "all",
    collection: Annotated[
        str | None,
        typer.Option(
            "--collection",
            help="With --questions: answer from this existing collection of the --docs folder (kept) "
            "instead of ingesting it afresh.",
        ),
    ] = None,
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
    """Ask questions through the real answering path (needs the model server) and score them.
    Temperature 0, fixed seeds.

    With --squad: exact match and token F1, answers whose citations hold a gold answer, answers without a
    citation, and how often questions about held-out articles are declined.

    With --questions FILE --docs DIR (your own documents): DIR is ingested into a throwaway collection and
    each question is scored by key strings. FILE is JSON, a list of questions or {"questions": [...]},
    each {"id", "question", "must_contain": ["64", "1000 | 1,000"], "file", "page", "answerable", "kind",
    "doc_set", "split"}: a right answer holds every must_contain string ("a | b": either; case-insensitive,
    on word boundaries); file is relative to DIR, page the 1-based PDF page (null for HTML), both used to
    check citations; "answerable": false (no keys) for a question the documents do not answer. Verdicts:
    right, quote_holds, wrong, quote_misses, declined; for unanswerable ones declined, answered,
    answered_quote. --out DIR writes results.json (a row per question) and summary.md (per kind and doc
    set, beside the targets), and rows.partial.jsonl while it runs. --collection NAME answers from a
    collection already ingested from DIR (kept) instead of a fresh one.

    Examples:
      docqa model serve --detach
      docqa eval answers --squad ../shared/eval/squad-dev/squad.json --limit 200 --out bench/results/eval-answers
      docqa eval answers --squad ../shared/eval/squad-dev/squad.json --limit 50 --model my-adapter
      docqa eval answers --questions bench/manuals/questions.json --docs data/manuals-corpus --split dev \\
          --out bench/results/eval-manuals-dev
    """
    if (squad is None) == (questions is None):
        raise ConfigError("give exactly one of --squad FILE or --questions FILE (with --docs DIR)")
    if questions is not None:
        if docs is None or not docs.is_dir():
            raise ConfigError("--questions needs --docs DIR: the folder of documents the questions were written from")
        _keyed_answers(questions, docs, split, collection, model, out_dir, as_json)
        return
    from rag.evaluation.answer_eval import ANSWER_METRICS, evaluate_answers
    from rag.evaluation.datasets import article_split, load_squad, squad_titles
    from rag.evaluation.runner import fresh_collection, work_directory

    services = build(_settings())
    services.generator.check()  # before minutes of ingest: is the model server up?
    # Measured on the test half of the articles only: the tune half trained the adapter and fitted the
    # evidence weights and the decline model (`docqa eval grounding`, `make adapter`).
    _, test = article_split(squad_titles(squad), seed)
    with work_directory(work_dir) as work:
        evalset = load_squad(
            squad, work, holdout_articles=holdout_articles, holdout_from=test, seed=seed, max_articles=max_articles
        )
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
                articles=set(test),
                split=None if split == "all" else split,
            )
    _emit(result, out_dir, as_json, ANSWER_METRICS, "model")


def _keyed_answers(
    questions: Path,
    docs: Path,
    split: str,
    collection: str | None,
    model: str | None,
    out_dir: Path | None,
    as_json: bool,
) -> None:
    """`eval answers --questions`: ingest ``docs`` afresh (or use ``collection``), ask the ``split``
    questions, score by keys; with ``out_dir``, each row is appended to rows.partial.jsonl as it comes."""
    from contextlib import nullcontext

    from rag.evaluation.question_set import evaluate_question_set, load_question_set, render_summary, write_results
    from rag.evaluation.runner import BuiltCollection, fresh_collection

    _, picked = load_question_set(questions, split)
    services = build(_settings())
    services.generator.check()  # before minutes of ingest: is the model server up?
    title = f"{questions.name} · split {split}"
    if collection is not None:
        reader = services.reader(collection)  # CollectionNotFoundError names the known ones
        counts = reader.counts()
        built_cm = nullcontext(BuiltCollection(collection, reader, counts["documents"], counts["chunks"], 0.0, []))
        err.print(f"answering {len(picked)} questions ({title}) from collection {collection}", highlight=False)
    else:
        built_cm = fresh_collection(services, docs, "questions")
        err.print(f"ingesting {docs} for {len(picked)} questions ({title}) ...", highlight=False)
    partial = None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        partial = out_dir / "rows.partial.jsonl"
        partial.write_text("", encoding="utf-8")

    def keep(row: dict) -> None:
        if partial is not None:
            with open(partial, "a", encoding="utf-8") as f:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")

    with built_cm as built:
        err.print(f"{built.documents} documents, {built.chunks} chunks in {built.ingest_s:.0f} s", highlight=False)
        result = evaluate_question_set(
            services, picked, built, docs, model=model, progress=lambda m: err.print(m, highlight=False), on_row=keep
        )
    result.update(questions_file=str(questions), split=split, collection=collection)
    if out_dir is not None:
        paths = write_results(result, out_dir, title)
        if partial is not None:
            partial.unlink()  # complete: results.json holds every row
        err.print(f"wrote {', '.join(str(p) for p in paths.values())}", highlight=False)
    if as_json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        out.print(render_summary(result, title), highlight=False, markup=False)


@app.command("grounding")
def grounding(
    squad: Annotated[Path, typer.Option("--squad", help="SQuAD v1.1 JSON file.")],
    per_group: Annotated[
        int, typer.Option("--per-group", help="Questions sampled from each of tune/test x in-index/held-out.")
    ] = 400,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the article split and the samples.")] = 0,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Keep result.json, result.md and result.png here.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON result instead of the table.")] = False,
) -> None:
    """Tune the evidence weights and fit the answerability (decline) model on half of the SQuAD articles,
    and measure both on the other half. Needs no model server. Prints the settings it found.

    Examples:
      docqa eval grounding --squad ../shared/eval/squad-dev/squad.json --out bench/results/eval-grounding
    """
    from rag.evaluation.datasets import article_split, load_squad, squad_titles
    from rag.evaluation.grounding_eval import holdouts, plot_decline_curve, tune_grounding
    from rag.evaluation.runner import fresh_collection, work_directory

    services = build(_settings())
    tune, test = article_split(squad_titles(squad), seed)
    held = holdouts(tune, test, seed)
    with work_directory(None) as work:
        evalset = load_squad(squad, work, holdout_articles=len(held), holdout_from=held, seed=seed)
        err.print(f"ingesting {len(evalset.doc_ids)} paragraphs (held out: {', '.join(held)})")
        with fresh_collection(services, evalset.docs_dir, "grounding") as built:
            result = tune_grounding(
                services, evalset, built, tune, per_group=per_group, seed=seed,
                progress=lambda m: err.print(m, highlight=False),
            )
    ev, an = result["evidence"], result["answerability"]
    old = an["test_dense_035"]
    rows = [
        {"measure": "evidence: best sentence holds the answer (test)", "value": ev["test"]["top1"]},
        {"measure": "evidence: best 3 sentences hold it (test)", "value": ev["test"]["top3"]},
        {"measure": "evidence, dense only: best sentence (test)", "value": ev["test_dense_only"]["top1"]},
        {"measure": "evidence, lexical only: best sentence (test)", "value": ev["test_lexical_only"]["top1"]},
        {"measure": "a retrieved passage holds the answer (test)", "value": ev["test_gold_retrieved"]},
        {"measure": "held-out questions declined (test)", "value": an["test"]["held_out_declined"]},
        {"measure": "answerable questions declined (test)", "value": an["test"]["in_index_declined"]},
        {"measure": "held-out declined, dense >= 0.35 alone (test)", "value": old["held_out_declined"]},
        {"measure": "answerable declined, dense >= 0.35 alone (test)", "value": old["in_index_declined"]},
    ]
    result["rows"] = rows
    settings_toml = "[evidence]\n" + "".join(f"{k} = {v}\n" for k, v in ev["weights"].items())
    settings_toml += f"[answer]\nanswerable_threshold = {an['threshold']}\nanswerable_weights = " + "{ " + ", ".join(
        f"{k} = {v}" for k, v in an["weights"].items()
    ) + " }\n"
    result["markdown_extra"] = (
        f"Fitted settings (docqa.toml):\n\n```toml\n{settings_toml}```\n\n"
        "Decline curve (test articles): ![decline curve](decline-curve.png)\n"
    )
    _emit(result, out_dir, as_json, ("value",), "measure")
    if out_dir is not None:
        plot_decline_curve(result, out_dir / "decline-curve.png")


def register_commands(root: typer.Typer) -> None:
    """`docqa eval ...`."""
    root.add_typer(app, name="eval", help="Measure retrieval and answers on BEIR / SQuAD / your own question sets.")
