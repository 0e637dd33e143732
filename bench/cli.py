"""CLI start-up: wall time of one ``docqa`` call, as a user at a shell pays it.

Each command runs as a fresh process (``python -m docqa.cli.main``), several times, on a collection of
data/samples plus the 913 SQuAD paragraphs of shared/eval, ingested once at the start. The baseline
is the same command with ``DOCQA_EMBEDDER_NUMPY_QUERIES=false`` (the query embedded by
sentence-transformers, so torch is imported and the model built on every call): the ratio is the gain
of the numpy query encoder. With a model server up (``make serve-model``) ``docqa ask`` is measured
too; it includes generation.

    python -m bench.cli           # BENCH_CLI_RUNS=5 by default
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import write_results
from bench.ingest import REPO, build_corpus

BASELINE = {"DOCQA_EMBEDDER_NUMPY_QUERIES": "false"}


def _timed(args: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-m", "docqa.cli.main", *args], cwd=REPO, env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - t0
    if run.returncode != 0:
        raise SystemExit(f"docqa {' '.join(args)} failed: {run.stderr.strip()[-500:]}")
    return seconds


def _server_up(env: dict[str, str]) -> bool:
    probe = subprocess.run(
        [sys.executable, "-m", "docqa.cli.main", "model", "status"], cwd=REPO, env=env, capture_output=True, text=True
    )
    return probe.returncode == 0


def main() -> None:
    runs = int(os.environ.get("BENCH_CLI_RUNS", "5"))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        corpus = root / "corpus"
        build_corpus(corpus, int(os.environ.get("BENCH_CLI_DOCS", "1000")))
        env = dict(os.environ, HF_HUB_OFFLINE="1", DOCQA_DATA_DIR=str(root / "data"))
        _timed(["ingest", str(corpus), "-c", "bench", "--json"], env)
        # Models and adapters are looked for in the main data directory: ask answers as `make run` does.
        ask_env = dict(env, DOCQA_MODEL_SOURCE=str(REPO / "data" / "models" / "SmolLM2-135M-Instruct"))
        commands: list[tuple[str, list[str], dict[str, str]]] = [
            ("docqa --help", ["--help"], env),
            ("docqa search", ["search", "How long is the warranty?", "-c", "bench", "--json"], env),
        ]
        if _server_up(env):
            commands.append(("docqa ask", ["ask", "How long is the warranty?", "-c", "bench", "--json"], ask_env))
        rows = []
        for name, args, base_env in commands:
            now = [_timed(args, base_env) for _ in range(runs)]
            before = [_timed(args, {**base_env, **BASELINE}) for _ in range(runs)]
            rows.append(
                {
                    "command": name,
                    "median s": round(statistics.median(now), 2),
                    "baseline median s": round(statistics.median(before), 2),
                    "baseline / now": round(statistics.median(before) / statistics.median(now), 2),
                }
            )
    notes = [
        f"{runs} fresh processes per command and variant; baseline: DOCQA_EMBEDDER_NUMPY_QUERIES=false "
        "(query embedded by sentence-transformers: torch imported, model built per call)",
        "collection: data/samples + the SQuAD paragraphs of shared/eval as .md, ingested once",
    ]
    if len(rows) < 3:
        notes.append("docqa ask not measured: no model server (make serve-model)")
    write_results("cli", rows, command="make bench-cli", notes=notes)


if __name__ == "__main__":
    main()
