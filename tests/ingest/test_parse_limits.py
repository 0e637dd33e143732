"""The per-file parse time limit holds on every thread: SIGALRM on the main thread (the CLI), a killable
child process elsewhere (the API's ingest jobs, the staff UI's uploads). A file that keeps a parser
busy is reported by name and the rest of the run is indexed."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from docqa.services import Services
from ingest.parse import parse_file
from ingest.parse_worker import ParseTimeout, ParseWorker
from rag.errors import IngestError
from rag.settings import IngestSettings
from tests import docgen

LIMIT_S = 0.5


def slow_html(path: Path) -> Path:
    """A real, valid HTML page that takes the HTML parser several seconds (hundreds of thousands of cells)."""
    rows = "".join(f"<tr><td>cell {i}</td><td>value {i}</td><td>note {i}</td></tr>" for i in range(40_000))
    path.write_text(f"<html><body><h1>Inventory</h1><table>{rows}</table></body></html>", encoding="utf-8")
    return path


def good_files(folder: Path) -> list[Path]:
    folder.mkdir()
    (folder / "returns.md").write_text("# Returns\n\nReturns are accepted within 30 days with a receipt.\n")
    docgen.make_pdf(
        folder / "manual.pdf", [[("p", "Page one: the charger.")], [("p", "Page two: the battery lasts 3 hours.")]]
    )
    return sorted(folder.iterdir())


@pytest.fixture(scope="module")
def slow_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = slow_html(tmp_path_factory.mktemp("slow") / "inventory.html")
    with pytest.raises(ParseTimeout):  # the premise: without a limit this file takes longer than LIMIT_S
        ParseWorker().parse(path, IngestSettings(), LIMIT_S)
    return path


def ingest_in(thread: str, services: Services, paths: list[Path]):
    out = {}

    def run() -> None:
        out["report"] = services.ingestor.ingest(paths, "kb", prune=False)

    if thread == "main":
        run()
    else:
        worker = threading.Thread(target=run)
        worker.start()
        worker.join(timeout=300)
        assert not worker.is_alive(), "the ingest thread hung on the slow file"
    return out["report"]


@pytest.mark.parametrize("thread", ["main", "worker"])
def test_slow_file_is_stopped_and_the_rest_indexed(
    thread: str, services: Services, slow_file: Path, tmp_path: Path
) -> None:
    services = Services(services.settings.with_overrides(ingest__parse_timeout_s=LIMIT_S), embedder=services.embedder)
    good = good_files(tmp_path / "good")
    report = ingest_in(thread, services, [slow_file, *good])
    assert [f["path"] for f in report.failed] == [str(slow_file)]
    assert "parsing took longer than" in report.failed[0]["error"]
    assert "DOCQA_INGEST_PARSE_TIMEOUT_S" in report.failed[0]["error"]
    assert sorted(report.added) == sorted(str(p) for p in good)
    pages = {h.chunk.page for h in services.retriever.search(services.reader("kb"), "battery hours").hits}
    assert 2 in pages


def test_worker_parses_like_the_parser_and_survives_a_timeout(tmp_path: Path, slow_file: Path) -> None:
    worker = ParseWorker()
    try:
        pdf = docgen.make_pdf(tmp_path / "m.pdf", [[("p", "First page text.")], [("p", "Second page text.")]])
        assert worker.parse(pdf, IngestSettings(), 60) == parse_file(pdf, IngestSettings())
        broken = tmp_path / "broken.pdf"
        broken.write_bytes(b"%PDF-1.7\n" + b"\x00garbage" * 50)
        with pytest.raises(IngestError) as err:
            worker.parse(broken, IngestSettings(), 60)
        assert err.value.path == str(broken)
        with pytest.raises(ParseTimeout):
            worker.parse(slow_file, IngestSettings(), LIMIT_S)
        assert worker.parse(pdf, IngestSettings(), 60).elements[-1].page == 2  # a fresh child took over
    finally:
        worker.close()
