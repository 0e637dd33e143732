"""Evaluation scoring (SQuAD normalisation, EM/F1, ranking metrics) and the data-set writers."""

from __future__ import annotations

import json
import math
from pathlib import Path

from rag.evaluation.answer_eval import strip_markers
from rag.evaluation.datasets import doc_id_from_path, load_beir, load_squad
from rag.evaluation.metrics import (
    contains_answer,
    exact_match,
    hit_at_k,
    mrr_at_k,
    ndcg_at_k,
    normalize_answer,
    recall_at_k,
    squad_f1,
)
from rag.evaluation.report import write_report


def test_squad_normalisation_and_scores() -> None:
    assert normalize_answer("The  Denver Broncos!") == "denver broncos"
    assert exact_match("denver broncos.", ["The Denver Broncos"]) == 1.0
    assert exact_match("Broncos", ["Denver Broncos"]) == 0.0
    # precision 1/1, recall 1/2 -> F1 2/3; the best of several golds counts
    assert math.isclose(squad_f1("Broncos", ["Denver Broncos", "Carolina"]), 2 / 3)
    assert squad_f1("nothing alike", ["Denver Broncos"]) == 0.0
    assert contains_answer("In 2016 the Denver Broncos won.", ["denver broncos"])
    assert not contains_answer("Denverite fans", ["Denver"])  # whole tokens only
    assert strip_markers("Paris is the capital [1]. It is big [2, 3].") == "Paris is the capital. It is big."


def test_ranking_metrics_on_a_hand_computed_case() -> None:
    ranked = ["d3", "d1", "d3", "d2"]  # a repeated document (two chunks) counts once
    rel = {"d1": 2.0, "d2": 1.0, "d9": 1.0}
    dcg = 2 / math.log2(3) + 1 / math.log2(4)
    idcg = 2 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert math.isclose(ndcg_at_k(ranked, rel, 10), dcg / idcg)
    assert math.isclose(recall_at_k(ranked, rel, 100), 2 / 3)
    assert mrr_at_k(ranked, rel, 10) == 0.5
    assert hit_at_k(ranked, rel, 1) == 0.0 and hit_at_k(ranked, rel, 2) == 1.0


def test_dataset_writers_encode_ids_in_paths(tmp_path: Path) -> None:
    beir = tmp_path / "b"
    (beir / "qrels").mkdir(parents=True)
    (beir / "corpus.jsonl").write_text(
        json.dumps({"_id": "a/1", "title": "", "text": "alpha"}) + "\n" + json.dumps({"_id": "2", "text": "beta"})
    )
    (beir / "queries.jsonl").write_text(
        json.dumps({"_id": "q1", "text": "alpha?"}) + "\n" + '{"_id": "q2", "text": "x"}'
    )
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\ta/1\t2\nq2\t2\t0\n")
    evalset = load_beir(beir, tmp_path / "w")
    assert [q.qid for q in evalset.queries] == ["q1"]  # q2 has no positive judgement
    assert sorted(doc_id_from_path(str(p)) for p in evalset.docs_dir.iterdir()) == ["2", "a/1"]

    squad = tmp_path / "s.json"
    para = {"context": "Kept text.", "qas": [{"id": "x", "question": "Q?", "answers": [{"text": "Kept"}]}]}
    squad.write_text(json.dumps({"data": [{"title": f"Art_{i}", "paragraphs": [para, para]} for i in range(3)]}))
    ev = load_squad(squad, tmp_path / "w2", holdout_articles=1, seed=3)
    assert len(ev.doc_ids) == 4 and len(ev.held_out) == 2 and len(ev.held_out_articles) == 1
    files = sorted(ev.docs_dir.rglob("*.md"))
    assert {doc_id_from_path(str(f)) for f in files} == set(ev.doc_ids)
    assert files[0].read_text().startswith("# Art ")


def test_report_writes_json_markdown_png(tmp_path: Path) -> None:
    result = {"kind": "retrieval", "dataset": "t", "rows": [{"variant": "bm25", "ndcg@10": 0.5, "hit@1": 0.25}]}
    paths = write_report(result, tmp_path, label="variant", metrics=("ndcg@10", "hit@1"))
    assert json.loads(paths["json"].read_text())["rows"][0]["variant"] == "bm25"
    assert "| bm25 | 0.500 | 0.250 |" in paths["markdown"].read_text()
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_answerability_fit_learns_which_signal_separates() -> None:
    from rag.answerability import FEATURES, fit, probability

    rng = __import__("random").Random(0)
    rows, labels = [], []
    for i in range(200):
        answerable = i % 2
        row = {f: rng.random() for f in FEATURES}
        row["best_dense"] = 0.3 + 0.4 * answerable + 0.1 * rng.random()  # the only informative signal
        rows.append(row)
        labels.append(answerable)
    weights = fit(rows, labels)
    assert weights["best_dense"] > 5 * max(abs(weights[f]) for f in FEATURES if f != "best_dense")
    hits = sum((probability(r, weights) >= 0.5) == bool(y) for r, y in zip(rows, labels, strict=True))
    assert hits == len(rows)


def test_article_split_is_disjoint_stable_and_order_free() -> None:
    from rag.evaluation.datasets import article_split

    titles = [f"Article_{i}" for i in range(24)]
    tune, test = article_split(titles)
    assert len(tune) == len(test) == 12 and not set(tune) & set(test) and set(tune) | set(test) == set(titles)
    assert article_split(list(reversed(titles))) == (tune, test)
    assert article_split(titles, seed=1) != (tune, test)
