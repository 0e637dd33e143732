"""Hybrid retrieval over a real collection: the candidate stage (which evaluation reads recall@100 from),
the pool search thins to top_k, filters, and the collection reader's public surface they use."""

from __future__ import annotations

from pathlib import Path

import pytest

from docqa.services import Services
from rag.fusion import fuse
from rag.store import CollectionReader
from rag.types import Filters


@pytest.fixture
def reader(services: Services, tmp_path: Path) -> CollectionReader:
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "alpha.md").write_text("# Alpha\n\nThe alpha reactor runs at 451 kelvin during the night shift.\n")
    (kb / "refunds.txt").write_text("Bravo team handles refunds. Refunds are paid within 14 days of a return.\n")
    (kb / "valves.md").write_text("# Charlie\n\nCharlie valves must be inspected every 90 days by a technician.\n")
    assert services.ingestor.ingest([kb], "kb").ok
    return services.reader("kb")


class TestCandidates:
    def test_search_ranks_what_the_candidate_stage_fused(self, services: Services, reader: CollectionReader) -> None:
        retriever = services.retriever
        found = retriever.candidates(reader, "when are refunds paid?", depth=retriever.settings.candidate_depth)
        result = retriever.search(reader, "when are refunds paid?", top_k=2)
        assert [h.chunk.id for h in result.hits] == [cid for cid, _ in found.fused[:2]]
        assert Path(result.hits[0].chunk.source).name == "refunds.txt"
        assert result.best_dense == pytest.approx(found.best_dense)
        assert result.hits[0].bm25_score == dict(found.lexical)[result.hits[0].chunk.id]

    def test_modes_choose_the_retrievers(self, services: Services, reader: CollectionReader) -> None:
        retriever = services.retriever
        dense = retriever.candidates(reader, "valves inspection", depth=10, mode="dense")
        assert dense.lexical == [] and [cid for cid, _ in dense.fused] == [cid for cid, _ in dense.dense]
        bm25 = retriever.candidates(reader, "valves inspection", depth=10, mode="bm25")
        assert bm25.dense and {cid for cid, _ in bm25.fused} <= {cid for cid, _ in bm25.lexical}

    def test_evaluation_reads_recall_from_the_same_stage(self, services: Services, reader: CollectionReader) -> None:
        """What ``docqa eval retrieval`` used to compute with its own copy of the candidate search."""
        from rag.evaluation.retrieval_eval import RECALL_K

        retriever, settings = services.retriever, services.settings.retrieval
        depth = max(settings.candidate_depth, RECALL_K)
        query = "night shift reactor temperature"
        by_hand = fuse(
            reader.search_dense(services.embedder.embed_query(query), depth),
            reader.search_lexical(query, depth),
            settings,
        )[:RECALL_K]
        assert retriever.candidates(reader, query, depth=depth, mode="hybrid").fused[:RECALL_K] == by_hand

    def test_filters_narrow_the_candidates(self, services: Services, reader: CollectionReader) -> None:
        hits = services.retriever.search(reader, "days", top_k=5, filters=Filters(doc_types=("txt",))).hits
        assert hits and {Path(h.chunk.source).name for h in hits} == {"refunds.txt"}


class TestReaderSurface:
    def test_documents_chunks_ids_and_counts(self, reader: CollectionReader) -> None:
        documents = reader.documents()
        assert [Path(d.path).name for d in documents] == ["alpha.md", "refunds.txt", "valves.md"]
        ids = reader.chunk_ids()
        assert len(ids) == sum(d.chunks for d in documents)
        chunks = reader.chunks(ids.tolist())
        assert set(chunks) == set(ids.tolist())
        only_md = reader.chunk_ids(Filters(source_glob="*.md"))
        assert {Path(chunks[i].source).suffix for i in only_md.tolist()} == {".md"}
        vectors = reader.embeddings(ids.tolist())
        assert all(v.shape == (reader.dim,) for v in vectors.values())
        counts = reader.counts()
        assert counts == {"documents": 3, "chunks": len(ids), "vectors": len(ids), "bm25": len(ids)}
