"""The widget reads tables and code out of a passage by the same rule as the staff UI: widget.js's
``segmentsOf``, run in Node, cuts the same texts into the same segments as ``ui.structure.segments``."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.helpers import REPO
from tests.ui.test_structure import CODE, LEAD, ROW_J, TABLE
from ui.structure import segments

NODE = shutil.which("node")
WIDGET = REPO / "docqa" / "api" / "static" / "widget.js"
# The widget's structure rule: its patterns (at the top of the script) and its functions, from the note
# where the patterns once stood to the first renderer (plain functions, no DOM).
PATTERNS = ("  var ROW_RE", '  var CELL_SEP = " | ";\n')
START, END = "  // (The patterns are defined at the top", "  /** ``text[a:b]`` as text nodes"
TEXTS = [
    TABLE,
    CODE,
    f"{LEAD}\nFormat | Explanation\n{ROW_J}\nAfter that:\n{CODE}",
    "Model: X200 | Battery life: 4 h\nModel: X300 | Weight: 1.2 kg | Battery life: 6 h",
    "Setting | Default\nSetting: start time | Default: 08:00: weekdays",
    "Example:\nif ready:\n    start()\n\n    stop()\n\nThat is all.",
    "The robot has three modes:\nEco: quiet, for night runs\nStandard for daily cleaning\nTurbo for carpets",
    "Edit /etc/fstab to mount it.\n$ mount -a\nDone.",
    "Options:\n-v, --verbose: print more\n--dry-run\nx=1 y=2",
    "",
]


def python_segments(text: str) -> list[dict[str, object]]:
    return [
        {
            "kind": s.kind,
            "start": s.start,
            "end": s.end,
            "columns": list(s.columns),
            "rows": [list(r.cells) for r in s.rows],
        }
        for s in segments(text)
    ]


@pytest.mark.skipif(NODE is None, reason="node missing")
def test_the_widget_and_the_ui_cut_passages_alike() -> None:
    source = WIDGET.read_text()
    patterns = source[source.index(PATTERNS[0]) : source.index(PATTERNS[1]) + len(PATTERNS[1])]
    rule = patterns + source[source.index(START) : source.index(END)]
    script = rule + (
        "\nconst texts = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "\nconsole.log(JSON.stringify(texts.map((t) => segmentsOf(t).map((s) => ({kind: s.kind, start: s.start,"
        " end: s.end, columns: s.columns || [], rows: (s.rows || []).map((r) => r.cells)})))));"
    )
    assert NODE is not None
    done = subprocess.run(
        [NODE, "-e", script], input=json.dumps(TEXTS), capture_output=True, text=True, timeout=60, check=True
    )
    widget = json.loads(done.stdout)
    for text, got in zip(TEXTS, widget, strict=True):
        assert got == python_segments(text), text
    assert any(s["kind"] == "table" for s in widget[0]) and any(s["kind"] == "code" for s in widget[1])
