"""Help text that reads well in any terminal width.

Typer's rich help keeps the single line breaks of a docstring (so a sentence wrapped in the source at
110 columns breaks mid-line on screen, also in the command list) and prints a ``<bool>`` type beside
every flag. ``DocqaGroup`` tidies the whole command tree once, when typer builds it: prose paragraphs
are unwrapped (indented lines, as under "Examples:", stay as written), flags show
no type, and value options show the conventional TEXT / INTEGER / PATH.
"""

from __future__ import annotations

import inspect
from typing import Any

import typer
from typer.core import TyperGroup

_TYPE_NAMES = {"str": "TEXT", "int": "INTEGER", "float": "NUMBER", "Path": "PATH", "bool": "BOOLEAN"}


def unwrap(text: str | None) -> str | None:
    """Join the lines of each prose paragraph; keep indented lines (examples) on their own."""
    if not text:
        return text
    lines = text.splitlines()
    out: list[str] = []
    for line in lines:
        joinable = (
            out
            and out[-1].strip()
            and line.strip()
            and not line[:1].isspace()
            and not out[-1].startswith(("\b", " "))
        )
        if joinable:
            out[-1] = f"{out[-1].rstrip()} {line.strip()}"
        else:
            out.append(line)
    return "\n".join(out)


def _metavar(option: Any, ctx: typer.Context) -> str:
    label = option.display_type(ctx).strip("<>")
    repeated = label.startswith("list[")
    if repeated:
        label = label[len("list[") : -1]
    name = label if "|" in label else _TYPE_NAMES.get(label, label.upper())
    return f"{name}..." if repeated else name


def tidy(command: Any) -> None:
    """Tidy ``command`` (a typer-built click command) and, for a group, every command below it, in place."""
    ctx = typer.Context(command)
    command.help = unwrap(inspect.cleandoc(command.help)) if command.help else command.help
    if command.short_help:
        command.short_help = unwrap(command.short_help)
    help_option = command.get_help_option(ctx)  # created once and cached by the command
    for param in [*command.params, *([help_option] if help_option else [])]:
        if getattr(param, "param_type_name", "") != "option":
            continue
        if param.metavar is None:
            param.metavar = "" if param.is_flag else _metavar(param, ctx)
        if param.help:
            param.help = unwrap(param.help)
    for sub in getattr(command, "commands", {}).values():
        tidy(sub)


class DocqaGroup(TyperGroup):
    """The root group: tidies the help of the whole tree as typer builds it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        tidy(self)
