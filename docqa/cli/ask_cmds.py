"""`docqa ask`: one question (or an interactive session) answered from the documents, with sources."""

from __future__ import annotations

import json
import sys

import typer
from rich.console import Console

from docqa.services import Services, build
from rag.compute import limit_compute_threads, threads_for
from rag.settings import load_settings
from rag.types import Answer, Filters, Question, page_ref

out = Console()


def _print_sources(answer: Answer) -> None:
    if not answer.citations:
        return
    if answer.mode == "quote":
        out.print("[dim](quoted from the source: the model's own answer could not be shown as it was)[/dim]")
    if answer.evidence:
        out.print("\n[bold]Evidence[/bold]")
        for e in answer.evidence:
            out.print(f"  [{e.n}] “{e.text}”", highlight=False)
    out.print("\n[bold]Sources[/bold]")
    for c in answer.citations:
        page = f", {page_ref(c.page, c.page_label)}" if c.page is not None else ""
        out.print(f"  [{c.n}] {c.source}{page}  [dim]score {c.score:.3f}[/dim]", highlight=False)
        out.print("      " + c.text[:240].replace("\n", " ") + ("…" if len(c.text) > 240 else ""), highlight=False)


def _answer_once(services: Services, question: Question, *, stream: bool, as_json: bool) -> Answer:
    if as_json or not stream:
        answer = services.pipeline.ask(question)
        if as_json:
            print(json.dumps(answer.as_json(), indent=2, ensure_ascii=False))
        else:
            out.print(answer.answer or "", highlight=False)
            _print_sources(answer)
        return answer
    final: Answer | None = None
    streamed: list[str] = []
    for event in services.pipeline.stream(question):
        if event["event"] == "token":
            streamed.append(event["text"])
            sys.stdout.write(event["text"])
            sys.stdout.flush()
        elif event["event"] == "final":
            final = event["answer"]
    sys.stdout.write("\n")
    assert final is not None
    if final.answer and final.citations and final.answer != "".join(streamed).strip():
        # The streamed text had the model's own [n] numbering; this is the one the sources list uses.
        out.print(f"[dim]answer with citations:[/dim] {final.answer}", highlight=False)
    _print_sources(final)
    return final


def ask(
    question: str = typer.Argument(None, help="The question; leave out for an interactive session."),
    collection: str = typer.Option(None, "--collection", "-c", help="Collection (default: settings)."),
    as_json: bool = typer.Option(False, "--json", help="Print the answer as JSON, with its timings."),
    stream: bool = typer.Option(True, "--stream/--no-stream", help="Print the answer as it is generated."),
    k: int = typer.Option(None, "-k", help="Passages given to the model (default: retrieval.top_k)."),
    source: str = typer.Option(None, "--source", help="Only documents whose path matches this glob."),
    doc_type: list[str] = typer.Option(None, "--type", help="Only these document types (pdf, docx, ...)."),
    model: str = typer.Option(None, "--model", help="Served model or LoRA adapter name."),
) -> None:
    """Answer a question from the indexed documents, citing file and page.

    Without a question it opens an interactive session in which follow-ups use the conversation.

    Examples:
      docqa ask "How long is the warranty?"
      docqa ask "What does a replacement battery cost?" --json
      docqa ask --collection support
    """
    settings = load_settings()
    limit_compute_threads(threads_for(settings.cli.compute_threads))  # before faiss or the encoder load
    services = build(settings)
    name = collection or settings.collection
    services.reader(name)  # an unknown collection fails here, before any model call
    services.generator.check()  # a stopped model server fails here, with how to start it
    filters = Filters(source_glob=source, doc_types=tuple(doc_type) if doc_type else None)

    def as_question(text: str, history: list[dict]) -> Question:
        return Question(text, name, history=history, filters=filters, top_k=k, model=model)

    if question:
        _answer_once(services, as_question(question, []), stream=stream, as_json=as_json)
        return
    history: list[dict] = []
    out.print(f"[bold]docqa[/bold] · collection [bold]{name}[/bold] · empty line or Ctrl-D to quit")
    while True:
        try:
            question = input("\n? ").strip()
        except EOFError:
            break
        if not question:
            break
        answer = _answer_once(services, as_question(question, list(history)), stream=stream, as_json=as_json)
        history += [{"role": "user", "content": question}, {"role": "assistant", "content": answer.answer or ""}]


def register_commands(app: typer.Typer) -> None:
    app.command("ask")(ask)
