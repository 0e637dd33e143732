"""`docqa ask`, `search` and `ingest` size their process's compute thread pools from the settings before any
work (cli.compute_threads: 1; ingest.compute_threads: 0, every usable core), as `docqa serve` does. Each run in
a fresh interpreter: a test process's pools are already sized."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.compute import threads_for, usable_cores
from tests.helpers import REPO

PROBE = """
import json, sys
from typer.testing import CliRunner
from docqa.cli.main import app
result = CliRunner().invoke(app, sys.argv[1:])
from threadpoolctl import threadpool_info
print(json.dumps({"exit": result.exit_code, "pools": [p["num_threads"] for p in threadpool_info()]}))
"""


def pools_after(args: list[str], data_dir: Path, **env: str) -> dict:
    environ = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1",
               "DOCQA_DATA_DIR": str(data_dir), **env}  # no *_NUM_THREADS from the caller
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=environ, cwd=data_dir, check=True
    )
    return json.loads(out.stdout.splitlines()[-1])


@pytest.mark.parametrize("command", [["search", "warranty", "-c", "nothing"], ["ask", "warranty", "-c", "nothing"]])
def test_a_question_runs_on_one_thread_per_call(command: list[str], tmp_path: Path) -> None:
    seen = pools_after(command, tmp_path)
    assert seen["exit"] != 0  # no such collection: the pools were sized before that was found out
    assert seen["pools"] and all(n == 1 for n in seen["pools"]), seen


def test_ingest_gets_every_usable_core_and_the_setting_overrides_it(tmp_path: Path) -> None:
    empty = tmp_path / "docs"
    empty.mkdir()
    default = pools_after(["ingest", str(empty), "-c", "kb"], tmp_path)
    assert set(default["pools"]) == {usable_cores()}, default
    one = pools_after(["ingest", str(empty), "-c", "kb"], tmp_path, DOCQA_INGEST_COMPUTE_THREADS="1")
    assert set(one["pools"]) == {1}, one


def test_zero_means_the_cores_this_process_may_use() -> None:
    assert threads_for(3) == 3 and threads_for(0) == usable_cores() == len(os.sched_getaffinity(0))
