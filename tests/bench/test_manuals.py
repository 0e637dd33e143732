"""The real-manual question set (bench/manuals/questions.json) and its corpus builder (bench/manuals.py)."""

from __future__ import annotations

import copy
import dataclasses
import json
from collections import Counter
from pathlib import Path

import pytest

from bench import manuals
from rag.evaluation.keyed import missing_keys
from rag.evaluation.question_set import load_question_set

KINDS = {"prose", "table", "list", "code", "two_part", "qualifier", "yes_no", "unanswerable"}


@pytest.fixture(scope="module")
def data() -> dict:
    return json.loads(manuals.QUESTIONS.read_text(encoding="utf-8"))


def test_question_file_is_complete_and_loads(data: dict) -> None:
    _, questions = load_question_set(manuals.QUESTIONS, "all")
    assert len(questions) >= 90
    files = {s.target: s for s in manuals.SOURCES}
    for q in data["questions"]:
        assert q["kind"] in KINDS and q["split"] in {"dev", "locked"}
        assert q["answerable"] == (q["kind"] != "unanswerable") == bool(q["must_contain"])
        if q["answerable"]:
            source = files[q["file"]]  # the answer's file is one of the pinned ones
            assert source.doc_set == q["doc_set"]
            assert (q["page"] is not None) == q["file"].endswith(".pdf")
            # Keys are the few strings a right answer holds, and the reference answer holds them too.
            assert not missing_keys(q["answer"], q["must_contain"]), q["id"]
    assert data["provenance"] == manuals.provenance()
    per_set = Counter(q["doc_set"] for q in data["questions"])
    assert len(per_set) >= 3 and min(per_set.values()) >= 25
    unanswerable = sum(not q["answerable"] for q in data["questions"])
    assert unanswerable / len(data["questions"]) >= 0.15


def test_splits_are_the_seeded_stratified_assignment(data: dict) -> None:
    recomputed = copy.deepcopy(data["questions"])
    for q in recomputed:
        q["split"] = None
    manuals.assign_splits(recomputed, data["split_seed"])
    assert [q["split"] for q in recomputed] == [q["split"] for q in data["questions"]]
    # Stratified: in every doc set x kind group the halves differ by at most one question.
    groups = Counter((q["doc_set"], q["kind"], q["split"]) for q in data["questions"])
    for doc_set, kind in {(d, k) for d, k, _ in groups}:
        assert abs(groups[(doc_set, kind, "dev")] - groups[(doc_set, kind, "locked")]) <= 1
    # Order of the file does not matter.
    shuffled = list(reversed(copy.deepcopy(recomputed)))
    manuals.assign_splits(shuffled, data["split_seed"])
    assert {q["id"]: q["split"] for q in shuffled} == {q["id"]: q["split"] for q in recomputed}


def test_build_corpus_checks_each_pinned_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = tmp_path / "good.html"
    good.write_text("<p>pinned</p>")
    source = manuals.Source("set", "some-doc", "1.0", str(good), "set/good.html", manuals.sha256_of(good))
    monkeypatch.setattr(manuals, "SOURCES", (source,))
    assert manuals.build_corpus(tmp_path / "corpus") == [tmp_path / "corpus" / "set" / "good.html"]
    assert (tmp_path / "corpus" / "set" / "good.html").read_text() == "<p>pinned</p>"

    changed = dataclasses.replace(source, sha256="0" * 64)
    monkeypatch.setattr(manuals, "SOURCES", (changed,))
    with pytest.raises(SystemExit, match="install that version") as err:
        manuals.build_corpus(tmp_path / "other")
    assert "some-doc 1.0" in str(err.value) and not (tmp_path / "other").exists()

    missing = dataclasses.replace(source, path=str(tmp_path / "absent.html"))
    monkeypatch.setattr(manuals, "SOURCES", (missing,))
    with pytest.raises(SystemExit, match="install some-doc"):
        manuals.build_corpus(tmp_path / "other")
