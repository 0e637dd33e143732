"""The ingest run against a real FAISS/BM25/SQLite store: incremental rules, pruning, locking, readers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from docqa.services import Services
from rag.errors import CollectionLockedError, CollectionNotFoundError, IndexMismatchError
from rag.settings import Settings
from rag.store import CollectionReader, CollectionWriter
from tests.helpers import REPO


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def corpus(root: Path) -> Path:
    write(root / "a.md", "# Alpha\n\nThe alpha reactor runs at 451 kelvin during the night shift.\n")
    write(root / "b.txt", "Bravo team handles refunds. Refunds are paid within 14 days of a return.\n")
    write(root / "sub" / "c.md", "# Charlie\n\nCharlie valves must be inspected every 90 days by a technician.\n")
    return root


def consistent(reader: CollectionReader) -> None:
    """The vector index, the BM25 index and the docstore describe the same chunks."""
    counts = reader.counts()
    assert counts["vectors"] == counts["chunks"] == counts["bm25"] == reader.info().chunks
    assert reader.info().documents == counts["documents"]


class TestIncremental:
    def test_first_run_adds_and_search_finds_page_source(self, services: Services, tmp_path: Path) -> None:
        root = corpus(tmp_path / "kb")
        report = services.ingestor.ingest([root], "kb")
        assert sorted(Path(p).name for p in report.added) == ["a.md", "b.txt", "c.md"]
        assert report.failed == [] and report.chunks >= 3
        reader = services.reader("kb")
        consistent(reader)
        hits = services.retriever.search(reader, "how often are valves inspected?").hits
        assert Path(hits[0].chunk.source).name == "c.md"
        assert hits[0].chunk.heading == "Charlie"

    def test_rerun_embeds_nothing_and_writes_no_generation(self, services: Services, tmp_path: Path) -> None:
        root = corpus(tmp_path / "kb")
        services.ingestor.ingest([root], "kb")
        generation = services.reader("kb").generation
        again = services.ingestor.ingest([root], "kb")
        assert again.embedded == 0 and again.chunks == 0
        assert len(again.unchanged) == 3 and not (again.added or again.updated or again.removed)
        assert services.reader("kb").generation == generation

    def test_changed_file_replaces_its_chunks(self, services: Services, tmp_path: Path) -> None:
        root = corpus(tmp_path / "kb")
        services.ingestor.ingest([root], "kb")
        write(root / "b.txt", "Bravo team handles refunds. Refunds are now paid within 30 days of a return.\n")
        report = services.ingestor.ingest([root], "kb")
        assert [Path(p).name for p in report.updated] == ["b.txt"] and report.embedded == 1
        reader = services.reader("kb")
        consistent(reader)
        texts = [h.chunk.text for h in services.retriever.search(reader, "refund days", top_k=10).hits]
        assert any("30 days" in t for t in texts) and not any("14 days" in t for t in texts)

    def test_deleted_file_is_pruned_when_its_folder_is_reingested(self, services: Services, tmp_path: Path) -> None:
        root = corpus(tmp_path / "kb")
        services.ingestor.ingest([root], "kb")
        (root / "sub" / "c.md").unlink()
        kept = services.ingestor.ingest([root], "kb", prune=False)
        assert kept.removed == []
        report = services.ingestor.ingest([root], "kb")
        assert [Path(p).name for p in report.removed] == ["c.md"]
        reader = services.reader("kb")
        consistent(reader)
        assert all("Charlie" not in h.chunk.text for h in services.retriever.search(reader, "valves", top_k=10).hits)

    def test_identical_content_under_two_paths_is_embedded_once(self, services: Services, tmp_path: Path) -> None:
        root = corpus(tmp_path / "kb")
        write(root / "copy-of-a.md", (root / "a.md").read_text())
        report = services.ingestor.ingest([root], "kb")
        assert len(report.added) == 4
        reader = services.reader("kb")
        consistent(reader)
        assert reader.info().documents == 4
        hit = services.retriever.search(reader, "alpha reactor kelvin").hits[0]
        assert sorted(Path(s).name for s in hit.chunk.sources) == ["a.md", "copy-of-a.md"]
        assert report.embedded == report.chunks  # the copy added no chunks of its own
        # Removing one copy keeps the content for the other.
        services.ingestor.remove([root / "a.md"], "kb")
        hit = services.retriever.search(services.reader("kb"), "alpha reactor kelvin").hits[0]
        assert [Path(s).name for s in hit.chunk.sources] == ["copy-of-a.md"]

    def test_remove_and_unknown_path(self, services: Services, tmp_path: Path) -> None:
        root = corpus(tmp_path / "kb")
        services.ingestor.ingest([root], "kb")
        report = services.ingestor.remove([root / "sub", tmp_path / "nope.txt"], "kb")
        assert [Path(p).name for p in report.removed] == ["c.md"]
        assert report.failed and "not in the collection" in report.failed[0]["error"]
        assert services.reader("kb").info().documents == 2

    def test_bad_files_are_reported_and_do_not_stop_the_run(self, services: Services, tmp_path: Path) -> None:
        root = corpus(tmp_path / "kb")
        (root / "empty.txt").write_bytes(b"")
        (root / "blob.txt").write_bytes(bytes(range(256)) * 40)
        (root / "picture.png").write_bytes(b"\x89PNG\r\n\x1a\n")
        report = services.ingestor.ingest([root], "kb")
        failed = {Path(f["path"]).name: f["error"] for f in report.failed}
        assert set(failed) == {"empty.txt", "blob.txt"}
        assert [Path(f["path"]).name for f in report.skipped] == ["picture.png"]  # not a document: skipped
        assert len(report.added) == 3
        consistent(services.reader("kb"))

    def test_legacy_encoding_is_read(self, services: Services, tmp_path: Path) -> None:
        path = tmp_path / "kb" / "menu.txt"
        path.parent.mkdir()
        path.write_bytes("Le café coûte 3 € au comptoir, la crème brûlée 5 €. Très bon rapport.".encode("cp1252"))
        services.ingestor.ingest([path], "kb")
        hit = services.retriever.search(services.reader("kb"), "café crème brûlée").hits[0]
        assert "café" in hit.chunk.text and "€" in hit.chunk.text


class TestStoreSafety:
    def test_second_writer_is_refused_with_a_clear_message(self, services: Services, tmp_path: Path) -> None:
        root = corpus(tmp_path / "kb")
        services.ingestor.ingest([root], "kb")
        emb = services.embedder
        with (
            CollectionWriter(services.settings, "kb", model_id=emb.model_id, dim=emb.dim),
            pytest.raises(CollectionLockedError, match="another process"),
        ):
            services.ingestor.ingest([root], "kb")
        # The refused run changed nothing and the lock is free again afterwards.
        assert services.ingestor.ingest([root], "kb").unchanged

    def test_reader_keeps_old_index_until_commit_then_reloads(self, services: Services, tmp_path: Path) -> None:
        root = corpus(tmp_path / "kb")
        services.ingestor.ingest([root], "kb")
        reader = CollectionReader(services.settings, "kb")
        old_generation = reader.generation
        write(root / "d.md", "# Delta\n\nDelta drones fly at most 120 metres high.\n")
        services.ingestor.ingest([root], "kb")
        assert reader.generation == old_generation and reader.info().documents == 3
        assert reader.refresh() is True
        assert reader.info().documents == 4
        consistent(reader)

    def test_other_embedding_model_is_a_clear_error(self, services: Services, tmp_path: Path) -> None:
        services.ingestor.ingest([corpus(tmp_path / "kb")], "kb")
        with pytest.raises(IndexMismatchError, match="DOCQA_EMBEDDER_MODEL"):
            CollectionReader(services.settings, "kb", expected_model="some/other-model")

    def test_unknown_collection(self, services: Services) -> None:
        with pytest.raises(CollectionNotFoundError, match="docqa ingest"):
            services.reader("missing")


def _run_cli(args: list[str], data_dir: Path, **kwargs: object) -> subprocess.Popen:
    env = dict(os.environ, DOCQA_DATA_DIR=str(data_dir), HF_HUB_OFFLINE="1")
    return subprocess.Popen(
        [sys.executable, "-m", "docqa.cli.main", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


@pytest.mark.slow
def test_sigkill_mid_ingest_leaves_previous_index_usable(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    base = corpus(tmp_path / "kb")
    proc = _run_cli(["ingest", str(base), "-c", "kb", "--json"], data_dir)
    out, errs = proc.communicate(timeout=300)
    assert proc.returncode == 0, errs
    big = tmp_path / "kb" / "bulk"
    for i in range(200):
        write(big / f"note-{i:03d}.md", f"# Note {i}\n\n" + f"Item {i} of the bulk set covers topic {i * 7}. " * 30)
    settings = Settings(data_dir=data_dir)
    killed_at = []
    for delay in (0.2, 0.8, 1.6):
        started = time.time()
        proc = _run_cli(["ingest", str(base), "-c", "kb", "--json"], data_dir)
        # Wait until the run has opened its new generation, then kill it part-way through.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(
            g.stat().st_mtime >= started for g in (data_dir / "index" / "kb").glob("g*")
        ):
            time.sleep(0.05)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed_at.append(proc.returncode)
        reader = CollectionReader(settings, "kb")
        consistent(reader)
        assert reader.info().documents == 3  # exactly the previous commit, nothing half-written
    assert all(code == -signal.SIGKILL for code in killed_at), "the run finished before it could be killed"
    proc = _run_cli(["ingest", str(base), "-c", "kb", "--json"], data_dir)
    out, errs = proc.communicate(timeout=600)
    assert proc.returncode == 0, errs
    report = json.loads(out)
    assert len(report["added"]) == 200 and len(report["unchanged"]) == 3
    reader = CollectionReader(settings, "kb")
    consistent(reader)
    assert reader.info().documents == 203
    # Debris of the killed runs is gone: only committed generations remain.
    assert len(list((data_dir / "index" / "kb").glob("g*"))) <= settings.index.keep_generations
