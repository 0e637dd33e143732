"""`docqa eval` end to end on tiny data sets: the real ingest, FAISS, BM25 and (for answers) vLLM.

The data are made here so the expected ranking is obvious: each question shares its words and meaning
with exactly one document, so every retriever must put it first.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from docqa.services import Services
from rag.errors import ConfigError
from rag.settings import Settings
from rag.store import list_collections

PASSAGES = {
    "p1": "The lighthouse keeper climbed the spiral staircase every evening to light the lamp.",
    "p2": "Sourdough bread rises slowly because wild yeast ferments the flour for many hours.",
    "p3": "Glaciers carve U-shaped valleys as the ice grinds across the bedrock.",
    "p4": "A violin has four strings tuned in fifths and is played with a horsehair bow.",
    "p5": "Honeybees communicate the direction of flowers with a waggle dance inside the hive.",
}
QUESTIONS = {
    "q1": ("who lights the lamp in a lighthouse", "p1"),
    "q2": ("why does sourdough bread rise slowly", "p2"),
    "q3": ("how do glaciers carve valleys", "p3"),
    "q4": ("how do honeybees tell where flowers are", "p5"),
}


@pytest.fixture
def run_eval(monkeypatch: pytest.MonkeyPatch, embedder) -> Callable[..., Result]:
    """`docqa eval ...` in-process, with the session's loaded embedder (a subprocess would load its own)."""
    import docqa.cli.eval_cmds as eval_cmds
    from docqa.cli.main import app

    def build(settings: Settings) -> Services:
        return Services(settings, embedder=embedder)

    monkeypatch.setattr(eval_cmds, "build", build)

    def invoke(*args: str, data_dir: Path, env: dict[str, str] | None = None) -> Result:
        monkeypatch.setenv("DOCQA_DATA_DIR", str(data_dir))
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        return CliRunner().invoke(app, list(args))

    return invoke


def write_beir(root: Path) -> Path:
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text(
        "\n".join(json.dumps({"_id": k, "title": "", "text": v}) for k, v in PASSAGES.items())
    )
    (root / "queries.jsonl").write_text("\n".join(json.dumps({"_id": k, "text": q}) for k, (q, _) in QUESTIONS.items()))
    lines = ["query-id\tcorpus-id\tscore"] + [f"{k}\t{d}\t1" for k, (_, d) in QUESTIONS.items()]
    (root / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n")
    return root


def write_squad(path: Path) -> Path:
    def para(text: str, question: str, answer: str) -> dict:
        return {"context": text, "qas": [{"id": question[:12], "question": question, "answers": [{"text": answer}]}]}

    data = {
        "data": [
            {"title": "Lighthouses", "paragraphs": [para(PASSAGES["p1"], QUESTIONS["q1"][0], "keeper")]},
            {"title": "Bread", "paragraphs": [para(PASSAGES["p2"], QUESTIONS["q2"][0], "wild yeast")]},
            {"title": "Glaciers", "paragraphs": [para(PASSAGES["p3"], QUESTIONS["q3"][0], "ice")]},
            {"title": "Bees", "paragraphs": [para(PASSAGES["p5"], QUESTIONS["q4"][0], "waggle dance")]},
        ]
    }
    path.write_text(json.dumps(data))
    return path


def test_eval_retrieval_beir_scores_every_variant_and_writes_three_files(tmp_path: Path, run_eval) -> None:
    beir = write_beir(tmp_path / "beir")
    out = tmp_path / "out"
    data = tmp_path / "data"
    result = run_eval("eval", "retrieval", "--beir", str(beir), "--out", str(out), "--json", data_dir=data)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["documents"] == len(PASSAGES) and report["queries"] == len(QUESTIONS)
    rows = {r["variant"]: r for r in report["rows"]}
    assert set(rows) == {"bm25", "dense", "hybrid"}  # no reranker configured
    for row in rows.values():
        assert row["hit@1"] == 1.0 and row["mrr@10"] == 1.0 and row["recall@100"] == 1.0
        assert row["ndcg@10"] == 1.0
    assert json.loads((out / "result.json").read_text())["rows"] == report["rows"]
    assert "| hybrid |" in (out / "result.md").read_text()
    assert (out / "result.png").read_bytes()[:4] == b"\x89PNG"
    # The eval's collection is temporary: nothing is left behind in the data directory.
    assert list_collections(Settings(data_dir=data)) == []


def test_eval_retrieval_squad_reports_ranks(tmp_path: Path, run_eval) -> None:
    squad = write_squad(tmp_path / "squad.json")
    result = run_eval("eval", "retrieval", "--squad", str(squad), "--json", data_dir=tmp_path / "data")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["documents"] == 4 and report["queries"] == 4
    assert {r["variant"]: r["hit@1"] for r in report["rows"]} == {"bm25": 1.0, "dense": 1.0, "hybrid": 1.0}


def test_eval_retrieval_needs_one_data_set(tmp_path: Path, run_eval) -> None:
    result = run_eval("eval", "retrieval", data_dir=tmp_path / "data")
    assert isinstance(result.exception, ConfigError) and "--beir" in str(result.exception)


@pytest.mark.integration
def test_eval_answers_through_vllm(tmp_path: Path, vllm_server, run_eval) -> None:
    squad = write_squad(tmp_path / "squad.json")
    out = tmp_path / "out"
    env = {"DOCQA_LLM_BASE_URL": vllm_server.base_url}
    args = ["eval", "answers", "--squad", str(squad), "--limit", "3", "--held-out", "1", "--holdout-articles", "1"]
    result = run_eval(*args, "--out", str(out), "--json", data_dir=vllm_server.settings.data_dir, env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    # Only the test half of the articles is asked about (two of four here, one of them held out).
    assert report["in_index_questions"] == 1 and report["held_out_questions"] == 1
    (row,) = report["rows"]
    for key in ("exact_match", "f1", "citation_has_answer", "no_citation", "declined_in_index", "declined_held_out"):
        assert 0.0 <= row[key] <= 1.0
    assert row["s_per_answer"] > 0
    answered = [a for a in report["answers"] if not a["declined"]]
    assert all(a["answer"] for a in report["answers"])
    # Each in-index question's paragraph is retrieved, so an answered question cites the gold article.
    assert all(a["cited"] for a in answered if not a["held_out"])
    assert row["unsupported_claims"] == 0 and 0.0 <= row["answer_has_gold"] <= 1.0
    assert (out / "result.png").exists() and "declined_held_out" in (out / "result.md").read_text()


def write_keyed(root: Path) -> tuple[Path, Path]:
    """Documents as files and a keyed question file about them (one question they do not answer)."""
    docs = root / "docs"
    docs.mkdir(parents=True)
    for name in ("p1", "p2", "p5"):
        (docs / f"{name}.txt").write_text(PASSAGES[name] + "\n")
    questions = [
        {
            "id": "k1",
            "question": QUESTIONS["q2"][0],
            "must_contain": ["yeast"],
            "file": "p2.txt",
            "page": None,
            "kind": "prose",
            "doc_set": "demo",
            "split": "dev",
        },
        {
            "id": "k2",
            "question": QUESTIONS["q4"][0],
            "must_contain": ["waggle dance | dance"],
            "file": "p5.txt",
            "page": None,
            "kind": "prose",
            "doc_set": "demo",
            "split": "dev",
        },
        {
            "id": "k3",
            "question": "What is the boiling point of mercury?",
            "must_contain": [],
            "answerable": False,
            "kind": "unanswerable",
            "doc_set": "demo",
            "split": "dev",
        },
        {
            "id": "k4",
            "question": QUESTIONS["q1"][0],
            "must_contain": ["keeper"],
            "file": "p1.txt",
            "page": None,
            "kind": "prose",
            "doc_set": "demo",
            "split": "locked",
        },
    ]
    path = root / "questions.json"
    path.write_text(json.dumps({"format": "test", "questions": questions}))
    return path, docs


def test_eval_answers_questions_needs_docs_and_one_source(tmp_path: Path, run_eval) -> None:
    path, docs = write_keyed(tmp_path)
    result = run_eval("eval", "answers", "--questions", str(path), data_dir=tmp_path / "data")
    assert isinstance(result.exception, ConfigError) and "--docs" in str(result.exception)
    both = ("eval", "answers", "--questions", str(path), "--docs", str(docs), "--squad", str(path))
    result = run_eval(*both, data_dir=tmp_path / "data")
    assert isinstance(result.exception, ConfigError) and "exactly one" in str(result.exception)


@pytest.mark.integration
def test_eval_answers_own_questions_through_vllm(tmp_path: Path, vllm_server, run_eval) -> None:
    path, docs = write_keyed(tmp_path)
    out = tmp_path / "out"
    env = {"DOCQA_LLM_BASE_URL": vllm_server.base_url}
    args = ["eval", "answers", "--questions", str(path), "--docs", str(docs), "--split", "dev"]
    result = run_eval(*args, "--out", str(out), "--json", data_dir=vllm_server.settings.data_dir, env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert sorted(r["id"] for r in report["rows"]) == ["k1", "k2", "k3"]  # the dev split only (round-robin order)
    assert report["documents"] == 3 and report["total"]["answerable"] == 2
    for row in report["rows"]:
        allowed = (
            {"right", "quote_holds", "wrong", "quote_misses", "declined"}
            if row["answerable"]
            else {"declined", "answered", "answered_quote"}
        )
        assert row["verdict"] in allowed and row["seconds"] > 0
        if row["answerable"] and not row["declined"]:
            assert row["file_cited"] is True  # each question's only passage is retrieved and cited
    assert {t["figure"] for t in report["targets"]} >= {"right_or_quote_holds", "unanswerable_declined"}
    assert json.loads((out / "results.json").read_text())["rows"] == report["rows"]
    assert "Per doc set" in (out / "summary.md").read_text()


@pytest.mark.integration
def test_eval_answers_own_questions_from_an_existing_collection(
    tmp_path: Path, vllm_server, run_eval, embedder
) -> None:
    path, docs = write_keyed(tmp_path)
    Services(vllm_server.settings, embedder=embedder).ingestor.ingest([docs], "kept")
    env = {"DOCQA_LLM_BASE_URL": vllm_server.base_url}
    args = [
        "eval",
        "answers",
        "--questions",
        str(path),
        "--docs",
        str(docs),
        "--collection",
        "kept",
        "--split",
        "locked",
    ]
    result = run_eval(*args, "--json", data_dir=vllm_server.settings.data_dir, env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [r["id"] for r in report["rows"]] == ["k4"] and report["documents"] == 3
    (row,) = report["rows"]
    assert row["declined"] or row["file_cited"] is True  # citations map back to paths under --docs
    assert "kept" in {c.name for c in list_collections(vllm_server.settings)}  # not dropped
