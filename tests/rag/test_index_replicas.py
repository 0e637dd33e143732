"""Index replicas: one writer and two reader processes on one data directory, as API processes on several
machines share an index directory; and the rules that make it safe (a question reads one generation, a
superseded generation outlives its replacement by ``index.keep_superseded_s``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from docqa.services import Services
from rag.settings import Settings
from rag.store import CollectionReader
from tests.helpers import REPO
from tests.index_replica_roles import STEPS, marker

READERS = 2


def role(*args: str | Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.index_replica_roles", *map(str, args)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


@pytest.mark.slow
def test_two_readers_follow_one_writer_through_complete_generations(tmp_path: Path) -> None:
    data, work = tmp_path / "shared" / "data", tmp_path / "work"
    work.mkdir()
    readers = [role("reader", data, work, i) for i in range(READERS)]
    writer = role("writer", data, tmp_path / "docs", work, READERS)
    try:
        writer_out, _ = writer.communicate(timeout=600)
        outputs = [r.communicate(timeout=300)[0] for r in readers]
    finally:
        for process in [writer, *readers]:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert writer.returncode == 0, writer_out
    assert all(r.returncode == 0 for r in readers), outputs

    log = json.loads((work / "writer.json").read_text())
    assert len(log) == len(STEPS)
    committed = {entry["generation"]: entry for entry in log}
    final = log[-1]["generation"]
    for i in range(READERS):
        result = json.loads((work / f"reader-{i}.json").read_text())
        assert result["errors"] == [], result["errors"][0]
        assert result["searches"] > len(STEPS)
        # Picked up: each thread's questions get the generations in commit order, ending with the last
        # commit; between them they got every generation the writer waited for.
        for mine in result["seen"]:
            assert mine == sorted(mine) and mine[-1] == final, result["seen"]
        assert {log[0]["generation"], log[2]["generation"], final} <= {g for mine in result["seen"] for g in mine}
        for line in result["observations"]:
            seen = json.loads(line)
            entry = committed.get(seen["generation"])
            assert entry is not None, f"reader {i} saw an uncommitted generation: {seen}"
            expected = entry["docs"]
            counts = seen["counts"]
            assert seen["docs"] == sorted(expected), (i, seen, entry)
            assert counts["documents"] == len(expected) and seen["info"][:2] == [seen["generation"], len(expected)]
            assert counts["chunks"] == counts["vectors"] == counts["bm25"] == seen["info"][2] == entry["chunks"]
            assert set(seen["markers"]) <= {marker(name, version) for name, version in expected.items()}, seen


def _corpus(services: Services, root: Path, text: str) -> str | None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "notes.md").write_text(text)
    return services.ingestor.ingest([root / "notes.md"], "kb").generation


def test_a_question_keeps_its_generation_while_another_refreshes(services: Services, tmp_path: Path) -> None:
    _corpus(services, tmp_path / "kb", "# Pumps\n\nThe pump pressure limit is 6 bar in every plant.\n")
    asking = services.reader("kb")  # what a question in flight holds
    ids = [int(i) for i in asking.chunk_ids()]
    before = {i: c.text for i, c in asking.chunks(ids).items()}
    _corpus(services, tmp_path / "kb", "# Fans\n\nFan blades are cleaned each spring by the night crew.\n")
    fresh = services.reader("kb")  # another question: the cached reader refreshes
    assert fresh.generation != asking.generation
    assert {i: c.text for i, c in asking.chunks(ids).items()} == before  # same ids, same texts
    assert asking.counts()["chunks"] == len(ids) and asking.info().generation == asking.generation
    assert "Fan blades" in " ".join(c.text for c in fresh.chunks([int(i) for i in fresh.chunk_ids()]).values())


class TestRetention:
    def generations(self, settings: Settings) -> list[str]:
        return sorted(p.name for p in (settings.index_dir / "kb").iterdir() if p.name.startswith("g"))

    def test_keep_generations_alone_by_default(self, services: Services, tmp_path: Path) -> None:
        for n in range(4):
            _corpus(services, tmp_path / "kb", f"# Note\n\nRevision {n} of the maintenance note for pumps.\n")
        assert self.generations(services.settings) == ["g000003", "g000004"]

    def test_a_superseded_generation_outlives_its_successor_by_keep_superseded_s(
        self, services: Services, tmp_path: Path
    ) -> None:
        settings = services.settings.with_overrides(index__keep_superseded_s=600.0)
        lingering = Services(settings, embedder=services.embedder)
        first = _corpus(lingering, tmp_path / "kb", "# Note\n\nRevision 0 of the maintenance note for pumps.\n")
        remote = CollectionReader(settings, "kb")  # a reader elsewhere, still on the first generation
        for n in range(1, 4):
            _corpus(lingering, tmp_path / "kb", f"# Note\n\nRevision {n} of the maintenance note for pumps.\n")
        assert self.generations(settings) == ["g000001", "g000002", "g000003", "g000004"]
        assert remote.generation == first and remote.refresh() and remote.generation == "g000004"
        # Once the successors are older than the window, the next commit deletes what keep_generations allows.
        for gen in ("g000002", "g000003", "g000004"):
            meta_path = settings.index_dir / "kb" / gen / "meta.json"
            meta = json.loads(meta_path.read_text())
            meta_path.write_text(json.dumps({**meta, "committed_at": meta["committed_at"] - 601}))
        _corpus(lingering, tmp_path / "kb", "# Note\n\nRevision 4 of the maintenance note for pumps.\n")
        assert self.generations(settings) == ["g000004", "g000005"]


def test_a_reader_whose_generation_was_pruned_while_loading_takes_the_newer_one(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader on another machine reads CURRENT, then a writer commits twice and prunes that generation
    before the reader opens it: the reader loads the newest instead of failing."""
    _corpus(services, tmp_path / "kb", "# Note\n\nRevision 0 of the maintenance note for pumps.\n")
    reader = CollectionReader(services.settings, "kb")
    real_load = CollectionReader._load
    raced: list[str] = []

    def load_after_two_commits(self: CollectionReader, name: str):
        if not raced:
            raced.append(name)
            for n in (1, 2):
                _corpus(services, tmp_path / "kb", f"# Note\n\nRevision {n} of the maintenance note for pumps.\n")
        return real_load(self, name)

    _corpus(services, tmp_path / "kb", "# Note\n\nRevision 9 of the maintenance note for pumps.\n")  # g000002
    monkeypatch.setattr(CollectionReader, "_load", load_after_two_commits)
    assert reader.refresh() is True
    assert raced == ["g000002"] and not (services.settings.index_dir / "kb" / "g000002").exists()
    assert reader.generation == "g000004" and reader.info().documents == 1
