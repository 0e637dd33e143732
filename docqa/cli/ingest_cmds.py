"""`docqa ingest`, `search`, `collections`, `remove`: build and inspect the index."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from docqa.services import build
from rag.compute import limit_compute_threads, threads_for
from rag.prompting import build_passages
from rag.settings import load_settings
from rag.types import Filters, page_ref

out = Console()


class _Bar:
    """A rich progress bar: files done, files/s and chunks/s."""

    def __init__(self) -> None:
        self.progress = Progress(
            TextColumn("[bold]ingest"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            transient=True,
        )
        self.task = None
        self.files = 0
        self.chunks = 0

    def start(self, total_files: int) -> None:
        self.progress.start()
        self.task = self.progress.add_task("ingest", total=total_files, rate="")

    def advance(self, files: int, chunks: int) -> None:
        self.files += files
        self.chunks += chunks
        elapsed = max(self.progress.tasks[0].elapsed or 1e-9, 1e-9)
        rate = f"{self.files / elapsed:.1f} files/s {self.chunks / elapsed:.0f} chunks/s"
        self.progress.update(self.task, advance=files, rate=rate)

    def stop(self) -> None:
        self.progress.stop()


def ingest(
    paths: list[Path] = typer.Argument(..., help="Files or folders (folders are walked recursively)."),
    collection: str = typer.Option(None, "--collection", "-c", help="Collection name (default: settings)."),
    prune: bool = typer.Option(
        None, "--prune/--no-prune", help="Drop stored documents under a given folder that are gone from it."
    ),
    rebuild: bool = typer.Option(False, "--rebuild", help="Re-embed everything (e.g. after changing model)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON report; no progress bar."),
    include: list[str] = typer.Option(
        None, "--include", help="In folders, only files matching this glob (name or relative path); repeatable."
    ),
    exclude: list[str] = typer.Option(
        None, "--exclude", help="In folders, leave out files matching this glob; repeatable."
    ),
    show_report: bool = typer.Option(
        False, "--report", help="Per document: pages, chunks, tables, OCR pages, dropped header/footer lines."
    ),
) -> None:
    """Add, update and (with folders) prune documents in a collection.

    Unchanged files are skipped by content hash; identical files are embedded once; a killed run
    leaves the previous index intact. Files in folders that are not documents (images, styles,
    scripts) are skipped, not failed. Exit code 1 when any file failed.

    Examples:
      docqa ingest data/samples
      docqa ingest ~/policies/travel.pdf --collection hr
      docqa ingest ./kb --no-prune --json
      docqa ingest ./site-export --exclude '*/search/*' --report
    """
    settings = load_settings()
    limit_compute_threads(threads_for(settings.ingest.compute_threads))  # before torch or faiss load
    services = build(settings)
    name = collection or settings.collection
    bar = _Bar() if (sys.stderr.isatty() and not as_json) else None
    try:
        report = services.ingestor.ingest(
            paths, name, prune=prune, rebuild=rebuild, progress=bar, include=include or None, exclude=exclude or None
        )
    finally:
        if bar:
            bar.stop()
    if as_json:
        print(json.dumps(report.as_json(), indent=2))
    else:
        out.print(
            f"[bold]{name}[/bold]: {len(report.added)} added, {len(report.updated)} updated, "
            f"{len(report.unchanged)} unchanged, {len(report.removed)} removed; {report.chunks} new chunks "
            f"({report.embedded} embedded), {report.total_chunks} in the collection; {report.seconds:.1f} s"
            + (f", {len(report.skipped)} non-document files skipped" if report.skipped else "")
        )
        if show_report:
            _print_documents(report.documents)
        for failure in report.failed:
            out.print(f"[red]failed[/red] {failure['path']}: {failure['error']}", highlight=False)
    raise typer.Exit(0 if report.ok else 1)


def _print_documents(documents: list[dict]) -> None:
    """The per-document figures a maintainer checks after ingesting real documents."""
    table = Table("document", "pages", "chunks", "tables", "OCR pages", "header/footer lines dropped", "contents pages")
    for d in documents:
        table.add_row(
            Path(d["path"]).name,
            str(d.get("pages", "")),
            str(d["chunks"]),
            str(d["table_chunks"]),
            str(d.get("ocr_pages", "")),
            str(d.get("running_lines_dropped", "")),
            str(d.get("contents_pages", "")),
        )
    out.print(table)
    for d in documents:
        for warning in d["warnings"]:
            out.print(f"[yellow]warning[/yellow] {d['path']}: {warning}", highlight=False)


def search(
    query: str = typer.Argument(..., help="What to look for."),
    collection: str = typer.Option(None, "--collection", "-c"),
    k: int = typer.Option(None, "-k", help="How many chunks (default: retrieval.top_k)."),
    source: str = typer.Option(None, "--source", help="Only documents whose path matches this glob."),
    doc_type: list[str] = typer.Option(None, "--type", help="Only these document types (pdf, docx, ...)."),
    mode: str = typer.Option(None, "--mode", help="hybrid, dense or bm25 (default: settings)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON: [{source, page, heading, score, text}]."),
) -> None:
    """Show the passages retrieval finds for a query (neighbouring chunks of a page merged), with score,
    source and page.

    Examples:
      docqa search "warranty period"
      docqa search "refund" --type docx -k 3 --json
    """
    settings = load_settings()
    limit_compute_threads(threads_for(settings.cli.compute_threads))  # before faiss or the encoder load
    services = build(settings)
    reader = services.reader(collection or settings.collection)
    filters = Filters(source_glob=source, doc_types=tuple(doc_type) if doc_type else None)
    result = services.retriever.search(reader, query, top_k=k, filters=filters, mode=mode)
    # Neighbouring chunks of one page are one passage, as answering shows them.
    passages = [p.citation() for p in build_passages(result.hits, settings.retrieval.merge_adjacent)]
    if as_json:
        keys = ("source", "page", "heading", "score", "text")
        print(json.dumps([{k: getattr(c, k) for k in keys} for c in passages], indent=2, ensure_ascii=False))
        return
    for i, c in enumerate(passages, 1):
        page = f" {page_ref(c.page, c.page_label)}" if c.page else ""
        heading = f" — {c.heading}" if c.heading else ""
        out.print(f"[bold]{i}.[/bold] {c.source}{page}{heading}  [dim]score {c.score:.4f}[/dim]")
        out.print("   " + c.text[:300].replace("\n", " "), highlight=False)
    out.print(f"[dim]{result.ms:.0f} ms[/dim]")


def collections(as_json: bool = typer.Option(False, "--json")) -> None:
    """List collections with their document and chunk counts.

    Example:
      docqa collections
    """
    infos = build(load_settings()).collections()
    if as_json:
        print(json.dumps([i.__dict__ for i in infos], indent=2))
        return
    table = Table("collection", "documents", "chunks", "embedding model", "generation")
    for info in infos:
        table.add_row(info.name, str(info.documents), str(info.chunks), info.model, info.generation)
    out.print(table)


def remove(
    paths: list[Path] = typer.Argument(..., help="Documents (or folders) to drop from the collection."),
    collection: str = typer.Option(None, "--collection", "-c"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Drop documents from a collection (the files themselves are not touched).

    Examples:
      docqa remove data/samples/old-manual.pdf
      docqa remove ./kb/archive --collection support
    """
    settings = load_settings()
    report = build(settings).ingestor.remove(paths, collection or settings.collection)
    if as_json:
        print(json.dumps(report.as_json(), indent=2))
    else:
        for path in report.removed:
            out.print(f"removed {path}", highlight=False)
        for failure in report.failed:
            out.print(f"[red]failed[/red] {failure['path']}: {failure['error']}", highlight=False)
    raise typer.Exit(0 if report.ok else 1)


def register_commands(app: typer.Typer) -> None:
    app.command("ingest")(ingest)
    app.command("search")(search)
    app.command("collections")(collections)
    app.command("remove")(remove)
