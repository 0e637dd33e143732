"""Fixtures for the fine-tuning tests: the sample corpus indexed once, and its Q/A file.

The Q/A pairs come from data/QUESTIONS.md (question, expected answer, file), the same table the
answer tests use, so the training set is about the documents the collection really holds.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from docqa.services import Services
from rag.settings import Settings
from tests.helpers import REPO, SAMPLES, sample_files

QUESTIONS = next(p for p in (REPO / "data" / "QUESTIONS.md", SAMPLES / "QUESTIONS.md") if p.exists())
_ROW = re.compile(r"^\|\s*\d+\s*\|(?P<q>[^|]+)\|(?P<a>[^|]+)\|(?P<f>[^|]+)\|(?P<p>[^|]+)\|")


def sample_qa() -> list[dict]:
    rows = []
    for line in QUESTIONS.read_text(encoding="utf-8").splitlines():
        match = _ROW.match(line)
        if match:
            rows.append({"question": match["q"].strip(), "answer": match["a"].strip(), "source": match["f"].strip()})
    assert len(rows) >= 10, f"{QUESTIONS} changed shape: {len(rows)} questions parsed"
    return rows


@pytest.fixture(scope="session")
def ft_data_dir(tmp_path_factory: pytest.TempPathFactory, embedder) -> Path:
    """A data directory with collection 'samples' (the sample corpus) and ``qa.jsonl`` beside it."""
    root = tmp_path_factory.mktemp("finetune")
    services = Services(Settings(data_dir=root / "data"), embedder=embedder)
    files = sample_files()
    report = services.ingestor.ingest(files, "samples", prune=False)
    assert report.ok, report.failed
    with open(root / "qa.jsonl", "w", encoding="utf-8") as fh:
        for row in sample_qa():
            fh.write(json.dumps(row) + "\n")
    return root / "data"


@pytest.fixture
def ft_services(ft_data_dir: Path, embedder) -> Services:
    return Services(Settings(data_dir=ft_data_dir), embedder=embedder)


@pytest.fixture(scope="session")
def ft_base_model(prepared_model_dir: Path) -> Path:
    """The converted chat checkpoint (the vLLM fixture's; converted once)."""
    return prepared_model_dir
