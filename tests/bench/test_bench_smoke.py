"""The benchmark helpers on tiny inputs: the numbers the full runs report are computed correctly."""

from __future__ import annotations

import json

import numpy as np

from bench import common
from bench.corpus import clustered_vectors, queries_near
from bench.retrieval import bench_vectors


def test_synthetic_vectors_are_unit_and_queries_find_their_neighbourhood() -> None:
    vectors = clustered_vectors(500, dim=32, centres=20)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    queries = queries_near(vectors, 10)
    assert float((queries @ vectors.T).max(axis=1).min()) > 0.5  # each query has a close stored point


def test_index_rows_measure_recall_against_flat() -> None:
    notes: list[str] = []
    rows = bench_vectors(2000, max_build_s=600, build_rate={}, notes=notes)
    by_kind = {r["index"]: r for r in rows}
    assert set(by_kind) == {"flat", "hnsw", "ivf"}
    assert by_kind["flat"]["recall@10"] == 1.0
    assert 0.5 < by_kind["hnsw"]["recall@10"] <= 1.0
    assert all(r["p99_ms"] >= r["p50_ms"] > 0 for r in rows)


def test_projected_slow_builds_are_skipped_with_a_note() -> None:
    notes: list[str] = []
    rows = bench_vectors(2000, max_build_s=1.0, build_rate={"hnsw": 1.0, "ivf": 1.0}, notes=notes)
    assert [r["index"] for r in rows] == ["flat"]
    assert any("hnsw at 2,000 skipped" in n for n in notes)


def test_write_results_writes_json_and_markdown(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(common, "RESULTS", tmp_path)
    path = common.write_results("t", [{"a": 1, "b": 0.5}], command="make x", notes=["n"], tables={"g": [{"c": 2}]})
    data = json.loads(path.read_text())
    assert data["rows"] == [{"a": 1, "b": 0.5}] and data["machine"]["cores"] and data["tables"]["g"] == [{"c": 2}]
    md = (tmp_path / "t.md").read_text()
    assert "| 1 | 0.500 |" in md and "| 2 |" in md and "make x" in md


def test_replayed_prompts_get_the_recorded_draft_and_alternatives() -> None:
    from bench.replay_answers import Recorder, Replayer
    from rag.prompting import DECLINE_TEXT, build_messages

    class Live:
        model_name = "docqa-base"

        def stream(self, messages: list[dict], **_: object):
            yield from ["Elizabeth ", "[1]"]

        def alternatives(self, messages: list[dict], *, k: int = 3, **_: object) -> list[str]:
            return ["Henry II [1]", "1589 [1]", "Newcastle [1]"][:k]

    asked = build_messages("Who granted the charter?", [])
    other = build_messages("Who built the keep?", [])
    recorder = Recorder(Live(), 3)  # type: ignore[arg-type]
    assert "".join(recorder.stream(asked, max_tokens=8)) == "Elizabeth [1]"
    assert recorder.alternatives(asked, k=1) == ["Henry II [1]"]
    recorded = json.loads(json.dumps({"drafts": recorder.drafts, "alts": recorder.alts}))
    replayer = Replayer(recorded, "docqa-base", ["docqa-base"])
    assert "".join(replayer.stream(asked)) == "Elizabeth [1]" and replayer.alternatives(asked, k=2) == [
        "Henry II [1]",
        "1589 [1]",
    ]
    assert "".join(replayer.stream(other)) == DECLINE_TEXT and replayer.missing == 1
    assert replayer.alternatives(other) == []


def test_a_rule_left_out_of_a_replay_finds_nothing_and_comes_back() -> None:
    import pytest

    import rag.verify
    from bench.replay_answers import without
    from rag.prompting import Passage
    from rag.types import StoredChunk

    text = "The default is 5; at most 10 copies are kept."
    passages = [Passage(1, [StoredChunk(1, "m.md", 0, text, None, None, None, "NarrativeText", [], None)], 1.0)]
    question = "What is the default number of copies kept?"
    assert rag.verify.anchor_problems("10 [1]", passages, question)  # the maximum, not the default
    assert not all(c.supported for c in rag.verify.recite("10 [1]", passages, question)[1])
    with without(["anchor"]):
        assert rag.verify.anchor_problems("10 [1]", passages, question) == []
        assert all(c.supported for c in rag.verify.recite("10 [1]", passages, question)[1])
    assert rag.verify.anchor_problems("10 [1]", passages, question)
    with pytest.raises(SystemExit, match="unknown rule"), without(["nope"]):
        pass
