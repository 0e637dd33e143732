"""Answer-policy experiments on a keyed question set (your documents, `docqa eval answers --questions`) without
the model server: record one live run's drafts and alternatives, then replay them through several settings on
one ingest of the documents. The SQuAD twin is bench/replay_answers.py (same Recorder and Replayer).

Build on a dev split only. A locked split is run live to report a finished change; its drafts, recorded in that
run, may be replayed to report what each rule of the finished policy is worth, never read to write one.

    python -m bench.replay_keyed record --out /tmp/manuals-dev.json --questions bench/manuals/questions.json \\
        --docs data/manuals-corpus --split dev --set check__accept_span=0.9 --set check__decline_below=0
    python -m bench.replay_keyed replay /tmp/manuals-dev.json --questions bench/manuals/questions.json \\
        --docs data/manuals-corpus --split dev --variant base:check__enabled=false \\
        --variant strict:check__accept_span=0.4 --variant no-anchor:without=anchor+recombined
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from bench.replay_answers import Recorder, Replayer, _overrides, without
from rag.generation import build_generator
from rag.settings import load_settings

REPORTED = ("right", "quote_holds", "wrong", "quote_misses", "declined", "right_or_quote_holds", "wrong_shown",
            "answerable_declined", "unanswerable_declined")  # fmt: skip


def _variant(spec: str) -> tuple[str, dict, list[str]]:
    """``NAME:setting=value,...,without=rule+rule`` -> (name, settings, rules left out)."""
    name, _, pairs = spec.partition(":")
    overrides = _overrides([p for p in pairs.split(",") if p])
    return name, overrides, [r for r in str(overrides.pop("without", "")).split("+") if r]


def main(argv: list[str] | None = None) -> None:
    from docqa.services import Services, build
    from rag.evaluation.question_set import evaluate_question_set, load_question_set
    from rag.evaluation.runner import fresh_collection

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    parser = argparse.ArgumentParser(prog="python -m bench.replay_keyed", description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["record", "replay"])
    parser.add_argument("drafts", nargs="?", type=Path, help="replay: the recorded drafts")
    parser.add_argument("--questions", type=Path, required=True)
    parser.add_argument("--docs", type=Path, required=True)
    parser.add_argument("--split", default="dev")
    parser.add_argument("--out", type=Path, help="record: where the drafts go; replay: a folder for the rows")
    parser.add_argument("--alternatives", type=int, default=5, help="record: alternatives kept per prompt")
    parser.add_argument("--set", action="append", default=[], help="record: a setting, e.g. check__enabled=false")
    parser.add_argument("--variant", action="append", default=[], help="replay: NAME:setting=value,setting=value")
    parser.add_argument("--keep", help="replay: a collection to keep after the run and reuse when it exists")
    args = parser.parse_args(argv)
    _, questions = load_question_set(args.questions, args.split)
    settings = load_settings(llm__temperature=0.0, llm__seed=0, **_overrides(args.set))
    if args.action == "record":
        if args.out is None:
            parser.error("record needs --out")
        recorder = Recorder(build_generator(settings), args.alternatives)
        services = build(settings, generator=recorder)
        with fresh_collection(services, args.docs, "record") as built:
            result = evaluate_question_set(services, questions, built, args.docs)
        args.out.write_text(json.dumps({"drafts": recorder.drafts, "alts": recorder.alts}))
        print(json.dumps({k: result["total"].get(k) for k in REPORTED}))
        return
    if args.drafts is None:
        parser.error("replay needs the recorded drafts")
    recorded = json.loads(args.drafts.read_text())
    served = [settings.model.served_name, *([settings.answer.adapter] if settings.answer.adapter else [])]
    base = build(settings, generator=Replayer(recorded, settings.model.served_name, served))
    with fresh_collection(base, args.docs, "replay", keep=args.keep) as built:
        for name, overrides, rules_out in [_variant(v) for v in args.variant] or [("settings", {}, [])]:
            replayer = Replayer(recorded, settings.model.served_name, served)
            services = Services(settings.with_overrides(**overrides), embedder=base.embedder, generator=replayer)
            with without(rules_out):
                result = evaluate_question_set(services, questions, built, args.docs)
            row = {k: result["total"].get(k) for k in REPORTED}
            print(json.dumps({"variant": name, **row, "unrecorded": replayer.missing}), flush=True)
            if args.out is not None:
                args.out.mkdir(parents=True, exist_ok=True)
                (args.out / f"{name}.json").write_text(json.dumps(result, indent=1, ensure_ascii=False))
    sys.exit(0)


if __name__ == "__main__":
    main()
