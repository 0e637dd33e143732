"""What every benchmark shares: a description of the machine, timing helpers, the table printer and
the JSON writer (bench/results/<name>.json, plus <name>.md with the same table for the README)."""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    """The facts a reader needs to compare numbers: CPU model and count, memory, library versions."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gb = round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    versions = {}
    for module in ("torch", "faiss", "sentence_transformers", "bm25s", "numpy"):
        mod = sys.modules.get(module)
        if mod is not None:
            versions[module] = getattr(mod, "__version__", "?")
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": mem_gb,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "versions": versions,
    }


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Timer:
    """``with Timer() as t: ...`` then ``t.s``: wall seconds of the block."""

    def __enter__(self) -> Timer:
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.s = time.perf_counter() - self._t0


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A markdown table (it reads fine in a terminal too)."""
    from rag.evaluation.report import markdown_table

    return markdown_table(rows, columns)


def write_results(
    name: str,
    rows: Sequence[dict[str, Any]],
    *,
    command: str,
    notes: Sequence[str] = (),
    tables: dict[str, Sequence[dict[str, Any]]] | None = None,
    **extra: Any,
) -> Path:
    """Print the table and write ``bench/results/<name>.json`` and ``<name>.md``; returns the JSON path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    info = machine()
    data = {
        "benchmark": name,
        "command": command,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": info,
        "rows": list(rows),
        "tables": {k: list(v) for k, v in (tables or {}).items()},
        "notes": list(notes),
        **extra,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    md = [
        f"### {name}",
        "",
        f"`{command}` on {info['cpu']}, {info['cores']} cores, {info['memory_gb']} GB "
        f"(1-min load {info['load_avg_1m']} at the end), {data['when']}",
        "",
        table(rows),
    ]
    for title, extra_rows in (tables or {}).items():
        md += ["", f"**{title}**", "", table(extra_rows)]
    md += [""] + [f"- {n}" for n in notes] if notes else []
    (RESULTS / f"{name}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    print(f"\nwrote {path}")
    return path
