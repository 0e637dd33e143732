"""README.md as a new user reads it: short, its links resolve, and its commands work.

Every ```bash block of the README is read line by line (comments dropped, ``\\`` continuations joined):

- ``make TARGET`` must be a target of the Makefile;
- every ``docqa ...`` command must name a real command, and each of its ``--options`` must appear in that
  command's ``--help``;
- the commands in ``SAFE`` (no model server, no network, nothing left running) are run, in the README's
  order, in a fresh data directory (``DOCQA_DATA_DIR``): each must exit 0 and print what ``SAFE`` expects.
  The README's placeholder folder of documents (``PLACEHOLDERS``) is the sample corpus here.

A README command that breaks (a renamed command or option, an ingest that fails) fails this test.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path

import pytest

from tests.helpers import REPO, SAMPLES

README = REPO / "README.md"
DOCS = sorted((REPO / "docs").glob("*.md"))
MAX_LINES = 250
# The README's stand-in for "your folder of documents".
PLACEHOLDERS = {"~/acme-docs": str(SAMPLES)}
# Commands safe to run here, by their command words, and a piece of the output each must print.
SAFE: dict[tuple[str, ...], str] = {
    ("ingest",): "added",
    ("collections",): "support",
    ("search",): "warranty",
    ("keys", "create"): "dq_",  # the key itself (the note to store it goes to stderr)
    ("keys", "list"): "widget",
    ("config",): 'data_dir = "{data_dir}"',
}
# Commands the walk-through must keep showing, so this test keeps running something real.
MUST_RUN = {("ingest",), ("search",), ("keys", "create"), ("config",)}
COMMAND_GROUPS = {"keys", "model", "eval", "feedback", "finetune", "users", "audit"}  # `docqa GROUP COMMAND ...`
ENV_ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=")


def bash_lines(text: str) -> list[str]:
    """The command lines of the text's ```bash blocks, in order, continuations joined."""
    lines: list[str] = []
    for block in re.findall(r"^\s*```bash\n(.*?)^\s*```", text, flags=re.M | re.S):
        pending = ""
        for raw in block.splitlines():
            line = raw.strip()
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            line = (pending + line).strip()
            pending = ""
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def words(line: str) -> list[str]:
    """The line's words without its comment and leading VAR=value assignments."""
    tokens = shlex.split(line, comments=True)
    while tokens and ENV_ASSIGNMENT.match(tokens[0]):
        tokens.pop(0)
    return tokens


def command_path(args: list[str]) -> tuple[str, ...]:
    """``("keys", "create")`` for ``keys create --scope ...``; ``("ask",)`` for ``ask "question"``."""
    if not args or args[0].startswith("-"):
        return ()
    if args[0] in COMMAND_GROUPS and len(args) > 1:
        return (args[0], args[1])
    return (args[0],)


def run_docqa(args: list[str], data_dir: Path) -> subprocess.CompletedProcess:
    config = data_dir.parent / "empty-docqa.toml"  # a docqa.toml in the checkout must not leak in
    config.touch()
    env = dict(os.environ, DOCQA_DATA_DIR=str(data_dir), DOCQA_CONFIG=str(config), HF_HUB_OFFLINE="1", COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "docqa.cli.main", *args], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip


@cache
def help_text(path: tuple[str, ...]) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        result = run_docqa([*path, "--help"], Path(tmp) / "data")
    assert result.returncode == 0, f"`docqa {' '.join(path)} --help` fails: {result.stderr}"
    return result.stdout


def readme_commands() -> list[list[str]]:
    return [w for w in map(words, bash_lines(README.read_text())) if w]


def test_readme_is_short() -> None:
    lines = README.read_text().count("\n")
    assert lines <= MAX_LINES, f"README.md has {lines} lines; move detail to docs/ (at most {MAX_LINES})"


def test_ci_runs_exactly_make_test() -> None:
    script = [line for line in (REPO / ".ci" / "run").read_text().splitlines() if line.strip()]
    assert script[-1].strip() == "make test"


def test_readme_has_the_quality_table_markers() -> None:
    text = README.read_text()
    start, end = text.find("<!-- quality-table -->"), text.find("<!-- /quality-table -->")
    assert 0 <= start < end, "the measured-quality table must sit between its two HTML comments"
    assert "| measured |" in text[start:end]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.M | re.S)
    return {slug(m) for m in re.findall(r"^#{1,6}\s+(.+)$", text, flags=re.M)}


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda p: p.relative_to(REPO).as_posix())
def test_relative_links_resolve(page: Path) -> None:
    text = re.sub(r"^\s*```.*?^\s*```", "", page.read_text(), flags=re.M | re.S)  # code blocks hold no links
    text = re.sub(r"`[^`\n]*`", "", text)
    targets = re.findall(r"\]\(([^)\s]+)\)", text) + re.findall(r"<img[^>]*\ssrc=\"([^\"]+)\"", text)
    broken = []
    for target in targets:
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        path = (page.parent / file_part).resolve() if file_part else page
        missing_anchor = bool(anchor) and path.suffix == ".md" and path.exists() and anchor not in anchors(path)
        if not path.exists() or missing_anchor:
            broken.append(target)
    assert not broken, f"{page.name}: links to missing files or headings: {broken}"


def test_make_targets_in_readme_exist() -> None:
    makefile = (REPO / "Makefile").read_text()
    targets = set(re.findall(r"^([A-Za-z][\w-]*):", makefile, flags=re.M))
    named = [w[1] for w in readme_commands() if w[0] == "make" and len(w) > 1]
    assert named, "the README shows no make command"
    assert set(named) <= targets, f"not Makefile targets: {set(named) - targets}"


def test_readme_docqa_commands_and_options_exist() -> None:
    commands = [w[1:] for w in readme_commands() if w[0] == "docqa"]
    assert commands
    for args in commands:
        path = command_path(args)
        text = help_text(path)
        for arg in args[len(path) :]:
            if arg.startswith("--"):
                option = arg.split("=", 1)[0]
                where = " ".join(path)
                assert option in text, f"`docqa {' '.join(args)}`: {option} is not an option of `docqa {where}`"


@pytest.mark.slow
def test_readme_safe_commands_run(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    ran: set[tuple[str, ...]] = set()
    for line in bash_lines(README.read_text()):
        args = words(line)
        if not args or args[0] != "docqa" or command_path(args[1:]) not in SAFE:
            continue
        args = [PLACEHOLDERS.get(a, a) for a in args[1:]]
        path = command_path(args)
        result = run_docqa(args, data_dir)
        shown = f"`docqa {' '.join(args)}` (README: `{line}`)"
        assert result.returncode == 0, f"{shown} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        expected = SAFE[path].format(data_dir=data_dir)
        assert expected in result.stdout, f"{shown} printed no {expected!r}:\n{result.stdout}"
        ran.add(path)
    assert ran >= MUST_RUN, f"the README no longer shows {sorted(MUST_RUN - ran)}"
