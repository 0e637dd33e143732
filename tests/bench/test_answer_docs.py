"""bench/answer_docs.py's scoring and aggregation: what the real-manual timing rows say about each answer."""

from __future__ import annotations

import multiprocessing

from bench.answer_docs import LoadRun, Reply, load_row, pick, score, summarise, where_time_goes
from bench.manuals import QUESTIONS
from rag.evaluation.question_set import KeyedQuestion, load_question_set

HEX = KeyedQuestion("g1", "What does %x print?", ["hex"], kind="table", doc_set="gnuplot")
MISSING = KeyedQuestion("s9", "Does SQLite run on Mars?", [], answerable=False, kind="unanswerable", doc_set="sqlite")


def final(answer: str, mode: str = "generate", declined: bool = False, calls: list[dict] | None = None) -> dict:
    return {
        "answer": answer, "mode": mode, "declined": declined,
        "timings": {"retrieval_ms": 40.0, "verification_ms": 120.0, "total_ms": 2000.0, "model_calls": calls or []},
    }


DRAFT = {"purpose": "draft", "prompt_tokens": 900, "generated_tokens": 12, "first_token_ms": 700.0, "total_ms": 1300.0}
ALT = {
    "purpose": "alternatives", "prompt_tokens": 1800, "generated_tokens": 9, "first_token_ms": 90.0, "total_ms": 800.0,
}


def test_each_reply_gets_the_keyed_verdict_of_what_was_shown() -> None:
    right = score(HEX, Reply(200, 0.4, 2.0, final("It prints the number in hex [1].", calls=[DRAFT])))
    quoted = score(HEX, Reply(200, 0.4, 3.0, final('From gnuplot.pdf: "%x prints decimal" [1]', mode="quote")))
    wrong = score(HEX, Reply(200, 0.4, 3.0, final("It prints octal [1].")))
    declined = score(MISSING, Reply(200, 0.3, 0.3, final("The documents do not cover this question.", declined=True)))
    failed = score(HEX, Reply(500, None, None, None, error="boom"))
    assert [r["verdict"] for r in (right, quoted, wrong, declined, failed)] == [
        "right", "quote_misses", "wrong", "declined", None,
    ]
    assert right["answer"] == "It prints the number in hex." and right["model_calls"] == [DRAFT]
    assert wrong["missing"] == ["hex"] and declined["answer"] is None


def test_a_level_reports_percentiles_errors_and_quality() -> None:
    rows = [score(HEX, Reply(200, 0.1 * i, float(i), final("hex [1]", calls=[DRAFT]))) for i in range(1, 11)]
    rows.append(score(HEX, Reply(200, 0.5, 30.0, final('"decimal" [1]', mode="quote"))))
    rows.append(score(MISSING, Reply(200, 0.2, 0.2, final("no", declined=True))))
    rows.append(score(HEX, Reply(429, None, None, None, error="slow down")))
    row = summarise(rows, concurrency=8, elapsed_s=60.0)
    assert row["users"] == 8 and row["questions"] == 13 and row["errors"] == 1
    assert row["right"] == 10 and row["quote_misses"] == 1 and row["wrong"] == 0
    assert row["right_or_quote_holds"] == round(10 / 11, 3) and row["unanswerable_declined"] == "1/1"
    assert row["final_p50_s"] == 5.5 and row["final_p95_s"] == 10.0  # nearest rank of 12: the 11th
    assert row["first_visible_p50_s"] <= row["first_visible_p95_s"] and row["answers_per_min"] == 12.0


def test_where_the_time_goes_splits_stages_and_model_calls() -> None:
    rows = [
        score(HEX, Reply(200, 0.4, 2.0, final("hex [1]", calls=[DRAFT]))),
        score(HEX, Reply(200, 0.4, 3.0, final('"x" [1]', mode="quote", calls=[{**DRAFT, "total_ms": 1500.0}, ALT]))),
    ]
    stages = {r["stage"]: r for r in where_time_goes(rows)}
    assert stages["retrieval"]["total_ms_p50"] == 40.0 and stages["verification"]["answers"] == 2
    assert all(list(r) == list(stages["model: draft"]) for r in stages.values())  # one set of table columns
    assert stages["model: draft"]["answers"] == 2 and stages["model: draft"]["total_ms_p50"] == 1400.0
    assert stages["model: alternatives"] == {
        "stage": "model: alternatives", "answers": 1, "prompt_tokens_p50": 1800, "generated_tokens_p50": 9,
        "first_token_ms_p50": 90.0, "total_ms_p50": 800.0,
    }


def test_the_fixed_list_covers_every_doc_set_of_the_dev_split() -> None:
    _, dev = load_question_set(QUESTIONS, "dev")
    first = pick(dev, "24")
    assert len(first) == 24 and {q.split for q in first} == {"dev"}
    assert {q.doc_set for q in first} == {"gnuplot", "sqlite", "borg"}
    assert pick(dev, "24") == first and len(pick(dev, "all")) == len(dev)


def test_the_load_row_counts_429_apart_from_errors() -> None:
    run = LoadRun(
        replies=[Reply(200, 0.5, 4.0, final("hex")), Reply(429, error="limit"), Reply(502, error="bad gateway")],
        health_ms=[2.0] * 98 + [80.0, 90.0], health_errors=0, elapsed_s=61.0, unfinished=2,
    )
    row = load_row(run, conversations=50, seconds=60)
    assert (row["answers"], row["rate_limited_429"], row["errors"], row["unfinished_at_drain"]) == (1, 1, 1, 2)
    assert row["healthz_p50_ms"] == 2.0 and row["healthz_p99_ms"] == 80.0 and row["healthz_probes"] == 100


def test_healthz_is_probed_from_its_own_process_beside_a_control_server() -> None:
    """The probe and the control run in processes of their own and report every latency; a dead address
    counts as failed probes, not as fast ones."""
    import http.server
    import threading

    from bench.answer_docs import _Ok, probe_health

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    done = multiprocessing.get_context("spawn").Event()
    threading.Timer(3.0, done.set).start()
    run = LoadRun()
    try:
        probe_health(f"http://127.0.0.1:{server.server_address[1]}", done, run)
    finally:
        server.shutdown()
    assert run.health_ms and run.control_ms and run.health_errors == 0
    assert load_row(run, conversations=1, seconds=3)["control_p99_ms"] is not None

    dead = LoadRun()
    done = multiprocessing.get_context("spawn").Event()
    threading.Timer(2.0, done.set).start()
    probe_health("http://127.0.0.1:9", done, dead)  # the discard port: nothing answers
    assert dead.health_errors > 0 and not dead.health_ms and dead.control_ms
