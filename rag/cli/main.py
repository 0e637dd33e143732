"""`docqa`: the command line. Each command builds the settings once and hands them down."""

from __future__ import annotations

import json
import sys

import typer
from rich.console import Console

from rag.cli import api_cmds, ask_cmds, ingest_cmds, up_cmds
from rag.cli.help import DocqaGroup
from rag.errors import DocqaError
from rag.settings import load_settings

app = typer.Typer(
    name="docqa",
    cls=DocqaGroup,
    help="Answers from your own documents, with citations. `docqa COMMAND --help` shows examples.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)

ingest_cmds.register(app)
ask_cmds.register(app)
up_cmds.register(app)
api_cmds.register(app)


def _register_optional(module: str, name: str, help_text: str) -> None:
    """Sub-apps that live in their own modules: `docqa model ...`, `docqa keys ...`."""
    import importlib
    import importlib.util

    if importlib.util.find_spec(module) is None:  # a command group still being written
        return
    sub = importlib.import_module(module)
    app.add_typer(sub.app, name=name, help=help_text)


_register_optional("rag.cli.model_cmds", "model", "Prepare and run the vLLM model server.")
_register_optional("rag.cli.eval_cmds", "eval", "Measure retrieval and answers on BEIR / SQuAD.")
_register_optional("rag.cli.ui_cmds", "ui", "Start the staff chat UI (Streamlit).")
_register_optional("rag.cli.feedback_cmds", "feedback", "Export the staff's feedback on answers (JSONL).")
_register_optional("rag.cli.finetune_cmds", "finetune", "LoRA fine-tuning: build data, train, evaluate, register.")


@app.command("config")
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
