"""`docqa`: the command line. Each command builds the settings once and hands them down."""

from __future__ import annotations

import importlib
import json
import sys

import typer
from rich.console import Console

from docqa.cli import COMMAND_MODULES
from docqa.cli.help import DocqaGroup
from rag.errors import DocqaError
from rag.settings import load_settings

err = Console(stderr=True)


def config_cmd(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of TOML-like text."),
) -> None:
    """Print the resolved settings (environment DOCQA_* over docqa.toml over defaults).

    Examples:
      docqa config
      DOCQA_RETRIEVAL_TOP_K=8 docqa config --json
    """
    settings = load_settings()
    data = json.loads(settings.model_dump_json())
    if as_json:
        print(json.dumps(data, indent=2))
        return
    for key, value in data.items():
        if isinstance(value, dict):
            print(f"\n[{key}]")
            for k, v in value.items():
                print(f"{k} = {json.dumps(v)}")
        else:
            print(f"{key} = {json.dumps(value)}")


def build_app(modules: tuple[str, ...] = COMMAND_MODULES) -> typer.Typer:
    """The Typer app: ``docqa config``, then every command module's ``register_commands(app)``."""
    app = typer.Typer(
        name="docqa",
        cls=DocqaGroup,
        help="Answers from your own documents, with citations. `docqa COMMAND --help` shows examples.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    for name in modules:
        importlib.import_module(name).register_commands(app)
    app.command("config")(config_cmd)
    return app


app = build_app()


def main() -> None:
    """Entry point: domain errors become one red line and exit code 1, never a traceback."""
    try:
        app()
    except DocqaError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
