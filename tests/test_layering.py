"""The layers, checked on every module's imports. Imports are read with ``ast`` from the source, so one made
inside a function, under ``TYPE_CHECKING`` or through ``importlib.import_module("...")`` counts as well:

    ui ──► docqa ──► ingest, finetune ──► rag

``rag`` (the library) imports none of the others; ``ingest`` and ``finetune`` (the features) import ``rag``
only, not each other; ``docqa`` (the application: composition root, CLI, API, model server) composes them;
the Streamlit ``ui`` uses ``docqa``'s composition root and never ``finetune``. ``bench`` and ``tests`` sit
outside the layers and may import anything.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import REPO

ALLOWED = {
    "rag": {"rag"},
    "ingest": {"rag", "ingest"},
    "finetune": {"rag", "finetune"},
    "docqa": {"rag", "ingest", "finetune", "docqa"},
    "ui": {"rag", "ingest", "docqa", "ui"},
}
OUTSIDE = {"bench", "tests"}
FIRST_PARTY = set(ALLOWED) | OUTSIDE
# The core registers features by name only; docqa.cli.help (its help rendering) is part of the core.
CLI_CORE_IMPORTS = {"docqa.cli", "docqa.cli.help", "rag.errors", "rag.settings"}


def modules(package: str) -> Iterator[tuple[Path, str]]:
    for path in sorted((REPO / package).rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        yield path, ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_import_module(func: ast.expr) -> bool:
    return (isinstance(func, ast.Attribute) and func.attr == "import_module") or (
        isinstance(func, ast.Name) and func.id == "import_module"
    )


def imported(path: Path, module: str) -> Iterator[tuple[int, str]]:
    """(line, module name) of every import in the file, wherever it stands."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolved against the module's package
                base = package[: len(package) - (node.level - 1)]
                yield node.lineno, ".".join([*base, *([node.module] if node.module else [])])
            else:
                yield node.lineno, node.module or ""
        elif (
            isinstance(node, ast.Call)
            and _is_import_module(node.func)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.lineno, node.args[0].value


def test_every_package_has_a_layer() -> None:
    packages = {p.parent.name for p in REPO.glob("*/__init__.py")}
    assert packages - FIRST_PARTY == set(), "a new top-level package needs its place in ALLOWED"


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_no_package_imports_a_higher_or_sibling_layer(package: str) -> None:
    bad = [
        f"{path.relative_to(REPO)}:{line} imports {name}"
        for path, module in modules(package)
        for line, name in imported(path, module)
        if name.split(".")[0] in FIRST_PARTY and name.split(".")[0] not in ALLOWED[package]
    ]
    assert not bad, f"{package}/ may import only {sorted(ALLOWED[package])}:\n" + "\n".join(bad)


def test_the_cli_core_imports_no_feature() -> None:
    path = REPO / "docqa" / "cli" / "main.py"
    first_party = {name for _, name in imported(path, "docqa.cli.main") if name.split(".")[0] in FIRST_PARTY}
    assert first_party <= CLI_CORE_IMPORTS, first_party - CLI_CORE_IMPORTS


def test_every_command_module_has_the_hook() -> None:
    from docqa.cli import COMMAND_MODULES

    for name in COMMAND_MODULES:
        path = REPO / Path(*name.split(".")).with_suffix(".py")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        hooks = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "register_commands"]
        assert hooks, f"{name} has no register_commands(app)"


def test_the_readers_storage_stays_in_the_store() -> None:
    """Callers use the reader's methods; its docstore, vector and BM25 indexes are the store's business."""
    hidden = {"docstore", "_docstore", "_vectors", "_bm25"}
    bad = [
        f"{path.relative_to(REPO)}:{node.lineno} reads .{node.attr}"
        for package in [*ALLOWED, "bench"]
        for path, _ in modules(package)
        if path != REPO / "rag" / "store.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Attribute) and node.attr in hidden
    ]
    assert not bad, "\n".join(bad)


def test_the_checker_sees_imports_inside_functions(tmp_path: Path) -> None:
    source = tmp_path / "probe.py"
    source.write_text(
        "import os\n"
        "def later():\n"
        "    from docqa.services import build\n"
        "    import importlib\n"
        "    importlib.import_module('finetune.train')\n"
        "from .sibling import thing\n"
    )
    names = {name for _, name in imported(source, "rag.sub.probe")}
    assert names == {"os", "docqa.services", "importlib", "finetune.train", "rag.sub.sibling"}
