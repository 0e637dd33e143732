"""The evaluation's collection: fresh and dropped by default; kept and reused when named (replays)."""

from __future__ import annotations

from pathlib import Path

import pytest

from docqa.services import Services
from rag.evaluation.runner import fresh_collection


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "warranty.md").write_text("# Warranty\n\nThe Sweep S3 comes with a warranty of 24 months.\n")
    return folder


def test_a_fresh_collection_is_dropped_and_a_kept_one_reused(services: Services, docs: Path) -> None:
    with fresh_collection(services, docs, "t") as built:
        assert built.chunks >= 1 and built.name in {c.name for c in services.collections()}
    assert built.name not in {c.name for c in services.collections()}

    with fresh_collection(services, docs, "t", keep="kept") as built:
        assert built.name == "kept" and built.chunks >= 1
    assert "kept" in {c.name for c in services.collections()}

    def no_ingest(*_: object, **__: object) -> None:
        raise AssertionError("a kept collection is reused, not ingested again")

    services.ingestor.ingest = no_ingest  # type: ignore[method-assign]
    with fresh_collection(services, docs, "t", keep="kept") as built:
        assert built.name == built.reader.name == "kept"
    assert "kept" in {c.name for c in services.collections()}
