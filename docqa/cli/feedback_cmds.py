"""`docqa feedback`: the staff's verdicts on answers, exported for fine-tuning."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from docqa.state import Feedback, open_state
from rag.feedback import RATINGS
from rag.settings import load_settings

app = typer.Typer(no_args_is_help=True, add_completion=False)


@contextmanager
def _feedback() -> Iterator[Feedback]:
    """The feedback table of the configured state store (state.backend), closed after the command."""
    store = open_state(load_settings())
    try:
        yield store.feedback
    finally:
        store.close()


def _rating(value: str | None) -> str | None:
    if value is not None and value not in RATINGS:
        raise typer.BadParameter("use 'up' or 'down'")
    return value


@app.command("export")
def export(
    out: str = typer.Option(..., "--out", "-o", help="JSONL file to write ('-' for standard output)."),
    rating: str = typer.Option(None, "--rating", callback=_rating, help="Only 'up' or only 'down' verdicts."),
) -> None:
    """Write every stored verdict as one JSON object per line.

    Each line: {"id", "created_at", "rating": "up"|"down", "comment", "question", "answer",
    "citations": [...], "collection", "model"}. The fine-tuning module reads this file; good
    answers are the ones rated "up".

    Examples:
      docqa feedback export --out feedback.jsonl
      docqa feedback export --out good.jsonl --rating up
      docqa feedback export --out - | jq .rating
    """
    with _feedback() as store:
        if out == "-":
            store.export_jsonl(sys.stdout, rating=rating)
        else:
            count = store.export_jsonl(Path(out), rating=rating)
            print(f"wrote {count} feedback record(s) to {out}", file=sys.stderr)


@app.command("stats")
def stats(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Count the stored verdicts by rating and collection.

    Example:
      docqa feedback stats
    """
    with _feedback() as store:
        records = store.list()
    by_rating = Counter(r.rating for r in records)
    by_collection = Counter(r.collection or "-" for r in records)
    summary = {"total": len(records), "up": by_rating["up"], "down": by_rating["down"], "by_collection": by_collection}
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    print(f"{summary['total']} verdicts: {summary['up']} up, {summary['down']} down")
    for name, n in sorted(by_collection.items()):
        print(f"  {name}: {n}")


def register_commands(root: typer.Typer) -> None:
    """`docqa feedback ...`."""
    root.add_typer(app, name="feedback", help="Export the staff's feedback on answers (JSONL).")
