"""Ingest embedding on Ray Data (``ingest.engine = "ray"``) against the local engine: the same real files
give the same index (chunk ids, texts, vectors within 1e-4, the manifest) on a real local Ray cluster
that the run starts and stops itself; and a Ray that is missing or unreachable fails naming what to do,
leaving the previous index in use. Ray starts once in this module."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from docqa.services import Services
from rag.embedder import SentenceTransformerEmbedder
from rag.errors import ConfigError, MissingDependencyError
from rag.settings import Settings
from rag.store import CollectionReader
from tests.docgen import make_csv, make_docx, make_html, make_md, make_pdf, make_pptx, make_txt
from tests.helpers import free_port

TOLERANCE = 1e-4


def corpus(root: Path) -> Path:
    """Real files of six formats, long enough for several chunks each."""
    body = " ".join(f"Valve {n} is inspected every {n * 7} days by the night shift technician." for n in range(30))
    make_pdf(root / "manual.pdf", [[("h1", "Setup"), ("p", body[:1500])], [("h1", "Care"), ("p", body[1500:])]])
    make_docx(root / "policy.docx", [("h1", "Returns"), ("p", "Refunds are paid within 14 days. " * 30)])
    make_pptx(root / "release.pptx", [("Release 2.1", ["No-go zones", "Faster maps"]), ("Roadmap", ["Offline"])])
    make_html(root / "faq.html", [("h1", "FAQ"), ("p", "The warranty lasts two years. " * 40)], title="FAQ")
    make_md(root / "notes.md", [("h1", "Notes"), ("p", body), ("h2", "Table"), ("table", "Part|Days\nA|7\nB|14")])
    make_csv(root / "parts.csv", [["part", "price"], *[[f"P-{n}", str(n * 3)] for n in range(40)]])
    make_txt(root / "readme.txt", "Plain text about the alpha reactor at 451 kelvin. " * 25)
    return root


def index_of(reader: CollectionReader) -> dict:
    """What two engines must agree on: chunk ids with their text and source, vectors, the manifest."""
    ids = [int(i) for i in reader.chunk_ids()]
    chunks = reader.chunks(ids)
    vectors = reader.embeddings(ids)
    return {
        "ids": ids,
        "chunks": [(chunks[i].source, chunks[i].page, chunks[i].heading, chunks[i].text) for i in ids],
        "vectors": np.stack([vectors[i] for i in ids]),
        "manifest": [
            (d.path, d.content_hash, d.doc_type, d.title, d.size, d.mtime, d.chunks) for d in reader.documents()
        ],
    }


def test_ray_engine_builds_the_same_index_as_the_local_engine(
    embedder: SentenceTransformerEmbedder, tmp_path: Path
) -> None:
    import ray

    root = corpus(tmp_path / "kb")
    local = Services(Settings(data_dir=tmp_path / "local"), embedder=embedder)
    # Small batches: several go to each of the two actors and come back in any order.
    on_ray = Services(
        Settings(data_dir=tmp_path / "ray", ingest={"engine": "ray", "ray_batch_size": 4, "ray_actors": 2}),
        embedder=embedder,
    )
    assert not ray.is_initialized()
    by_local = local.ingestor.ingest([root], "kb")
    by_ray = on_ray.ingestor.ingest([root], "kb")
    assert not ray.is_initialized(), "the run stops the local cluster it started"

    assert by_ray.failed == by_local.failed == []
    assert sorted(by_ray.added) == sorted(by_local.added) and len(by_ray.added) == 7
    assert by_ray.embedded == by_local.embedded > 8  # more than two batches of 4
    a, b = index_of(local.reader("kb")), index_of(on_ray.reader("kb"))
    assert a["ids"] == b["ids"]
    assert a["chunks"] == b["chunks"]
    assert a["manifest"] == b["manifest"]
    assert a["vectors"].shape == b["vectors"].shape
    # Each chunk's own vector: rows put back out of order would differ by far more than this.
    assert float(np.abs(a["vectors"] - b["vectors"]).max()) < TOLERANCE
    hits = on_ray.retriever.search(on_ray.reader("kb"), "how hot does the alpha reactor run?").hits
    assert Path(hits[0].chunk.source).name == "readme.txt"


def test_unreachable_ray_address_names_the_setting_and_keeps_the_previous_index(
    embedder: SentenceTransformerEmbedder, tmp_path: Path
) -> None:
    import ray

    root = corpus(tmp_path / "kb")
    settings = Settings(data_dir=tmp_path / "data")
    Services(settings, embedder=embedder).ingestor.ingest([root], "kb")
    bad = settings.with_overrides(ingest__engine="ray", ingest__ray_address=f"127.0.0.1:{free_port()}")
    on_bad_ray = Services(bad, embedder=embedder)
    before = index_of(on_bad_ray.reader("kb"))
    generation = on_bad_ray.reader("kb").generation

    # Nothing to embed: Ray is never reached, so the bad address does not matter yet.
    again = on_bad_ray.ingestor.ingest([root], "kb")
    assert len(again.unchanged) == 7 and again.embedded == 0 and not ray.is_initialized()

    make_txt(root / "readme.txt", "The alpha reactor now runs at 470 kelvin. " * 25)
    with pytest.raises(ConfigError, match=r"ingest\.ray_address .*DOCQA_INGEST_RAY_ADDRESS.*no Ray cluster answers"):
        on_bad_ray.ingestor.ingest([root], "kb")
    reader = on_bad_ray.reader("kb")
    assert reader.generation == generation
    after = index_of(reader)
    assert after["ids"] == before["ids"] and after["chunks"] == before["chunks"]
    hits = on_bad_ray.retriever.search(reader, "alpha reactor kelvin").hits
    assert "451 kelvin" in hits[0].chunk.text
    # The failed run let go of the collection: the local engine takes the change.
    report = Services(settings, embedder=embedder).ingestor.ingest([root], "kb")
    assert [Path(p).name for p in report.updated] == ["readme.txt"]


def test_malformed_ray_address_is_refused_with_the_forms_it_takes(
    embedder: SentenceTransformerEmbedder, tmp_path: Path
) -> None:
    root = corpus(tmp_path / "kb")
    settings = Settings(data_dir=tmp_path / "data", ingest={"engine": "ray", "ray_address": "headnode"})
    with pytest.raises(ConfigError, match=r"ingest\.ray_address .*'headnode' is not a Ray address.*HOST:PORT"):
        Services(settings, embedder=embedder).ingestor.ingest([root], "kb")
    assert not (settings.index_dir / "kb" / "CURRENT").exists()


def test_missing_ray_names_the_install_command(
    embedder: SentenceTransformerEmbedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = corpus(tmp_path / "kb")
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` sees where it is not installed
    monkeypatch.setitem(sys.modules, "ray.data", None)
    settings = Settings(data_dir=tmp_path / "data", ingest={"engine": "ray"})
    with pytest.raises(MissingDependencyError, match=r"pip install -e '\.\[ray\]'.*DOCQA_INGEST_ENGINE=local"):
        Services(settings, embedder=embedder).ingestor.ingest([root], "kb")


def test_ray_engine_refuses_an_embedder_other_than_the_configured_one(
    embedder: SentenceTransformerEmbedder, tmp_path: Path
) -> None:
    root = corpus(tmp_path / "kb")
    settings = Settings(data_dir=tmp_path / "data", ingest={"engine": "ray"}, embedder={"model": "/models/other"})
    with pytest.raises(ConfigError, match=r"embedder\.model"):
        Services(settings, embedder=embedder).ingestor.ingest([root], "kb")


def test_engine_is_local_unless_set_and_is_set_like_every_other_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    assert Settings().ingest.engine == "local" and Settings().ingest.ray_address is None
    monkeypatch.setenv("DOCQA_INGEST_ENGINE", "ray")
    monkeypatch.setenv("DOCQA_INGEST_RAY_ADDRESS", "10.0.0.5:6379")
    monkeypatch.setenv("DOCQA_INGEST_RAY_ACTORS", "4")
    ingest = Settings().ingest
    assert (ingest.engine, ingest.ray_address, ingest.ray_actors) == ("ray", "10.0.0.5:6379", 4)
    monkeypatch.setenv("DOCQA_INGEST_ENGINE", "spark")
    with pytest.raises(ValidationError, match=r"ingest\.engine"):
        Settings()
