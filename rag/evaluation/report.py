"""Results in three forms: JSON for machines, a markdown table for the README, a PNG bar chart."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A GitHub markdown table; floats to three decimals, the first column left-aligned."""
    if not rows:
        return ""
    columns = list(columns or rows[0].keys())
    lines = [
        "| " + " | ".join(columns) + " |",
        "|" + "|".join([":---"] + ["---:"] * (len(columns) - 1)) + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c)) for c in columns) + " |")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return "" if value is None else str(value)


def render_markdown(result: dict[str, Any]) -> str:
    """Title line with the data set and sizes, then the table."""
    head = f"**{result['kind']} · {result['dataset']}** — {result.get('documents', '?')} documents, "
    head += f"{result.get('chunks', '?')} chunks, {result.get('queries', '?')} questions"
    body = markdown_table(result["rows"])
    extra = result.get("markdown_extra", "")
    return "\n\n".join(part for part in (head, body, extra) if part) + "\n"


def bar_chart(rows: Sequence[dict[str, Any]], label: str, metrics: Sequence[str], title: str, path: Path) -> None:
    """Grouped bars: one group per metric, one bar per row (variant); values in [0, 1]."""
    import matplotlib

    matplotlib.use("Agg")  # no display: render to a file
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(metrics)), 4), dpi=110)
    width = 0.8 / max(len(rows), 1)
    for i, row in enumerate(rows):
        xs = [m + i * width for m in range(len(metrics))]
        ax.bar(xs, [float(row.get(m) or 0.0) for m in metrics], width, label=str(row[label]))
    ax.set_xticks([m + width * (len(rows) - 1) / 2 for m in range(len(metrics))], list(metrics))
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(fontsize="small")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_report(result: dict[str, Any], out_dir: Path, *, label: str, metrics: Sequence[str]) -> dict[str, Path]:
    """Write ``result.json``, ``result.md`` and ``result.png`` into ``out_dir``; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "result.json", "markdown": out_dir / "result.md", "png": out_dir / "result.png"}
    data = {k: v for k, v in result.items() if k != "markdown_extra"}
    paths["json"].write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    paths["markdown"].write_text(render_markdown(result), encoding="utf-8")
    bar_chart(result["rows"], label, metrics, f"{result['kind']} · {result['dataset']}", paths["png"])
    return paths
