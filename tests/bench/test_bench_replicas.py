"""bench.replicas' own arithmetic and load generator on tiny inputs (the full run starts real replicas)."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bench.replicas import QUESTIONS, Load, row, run_load


def test_rows_are_ratios_to_the_runs_own_baselines() -> None:
    sqlite = Load([200] * 10, [0.01] * 10, 1.0)
    one = Load([200] * 8, [0.02] * 8, 1.0)
    two = Load([200] * 12 + [503], [0.02] * 13, 1.0)
    r = row("postgres", 2, two, sqlite, one)
    assert r["req_per_s"] == 12.0 and r["errors"] == 1 and r["requests"] == 13
    assert r["ratio_vs_1_replica"] == 1.5 and r["ratio_vs_sqlite_1"] == 1.2
    assert row("sqlite (default)", 1, sqlite, sqlite, None)["ratio_vs_1_replica"] is None


@contextmanager
def counting_server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A stand-in for `docqa serve`'s /v1/ask that records each request body."""
    seen: list[dict[str, Any]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            seen.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            raw = json.dumps({"conversation_id": "c1"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_load_is_bounded_and_alternates_between_replicas() -> None:
    with counting_server() as (a, seen_a), counting_server() as (b, seen_b):
        load = asyncio.run(run_load([a, b], ["k1", "k2", "k3"], 12))
    assert load.statuses == [200] * 12 and len(load.latencies_s) == 12 and load.elapsed_s > 0
    assert len(seen_a) == len(seen_b) == 6
    bodies = seen_a + seen_b
    # A conversation's first question starts it; the next two continue it by the id the answer returned.
    assert all((body["question"] == QUESTIONS[0]) == (body["conversation_id"] is None) for body in bodies)
    assert sum(1 for body in bodies if body["conversation_id"] is None) >= 4  # 12 requests: at least 4 starts
