"""`docqa up`: run the HTTP API (with the widget) and the staff UI together, stopping both on Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import typer
from rich.console import Console

from rag.settings import load_settings

out = Console()


def up(
    model: bool = typer.Option(True, "--model/--no-model", help="Also start the vLLM server if it is not up."),
) -> None:
    """Start the API (port DOCQA_API_PORT) and the Streamlit UI (DOCQA_UI_PORT) in the foreground.

    The model server is started detached first when it is not already answering.

    Examples:
      docqa up
      DOCQA_API_PORT=9000 docqa up --no-model
    """
    from docqa.model_server import is_ready

    settings = load_settings()
    base = [sys.executable, "-m", "docqa.cli.main"]
    if model and not is_ready(settings):
        subprocess.run([*base, "model", "serve", "--detach"], check=True)
    children = [subprocess.Popen([*base, "serve"]), subprocess.Popen([*base, "ui"])]
    out.print(
        f"API + widget: http://{settings.api.host}:{settings.api.port}   "
        f"staff UI: http://127.0.0.1:{settings.ui.port}   (Ctrl-C stops both)"
    )

    def _stop(*_: object) -> None:
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
        raise typer.Exit(0)

    signal.signal(signal.SIGTERM, _stop)
    try:
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    _stop()


def register_commands(app: typer.Typer) -> None:
    app.command("up")(up)
