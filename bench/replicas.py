"""API throughput with one vs two `docqa serve` replicas on the shared PostgreSQL state store.

Each row serves the sample corpus from one data directory and answers a fixed number of ``POST /v1/ask``
requests sent by ``concurrency`` clients at once from 127.0.0.1, three turns per conversation (follow-ups
by conversation_id), each client with its own staff key: every request passes authentication (a key
lookup), a rate-limit take and the conversation's read and append, plus retrieval over the index. With two
replicas the requests alternate between them, as behind a round-robin load balancer, so a conversation
hops from one replica to the other.

The model server is an instant stub (tests/fake_model_server.py: a scripted answer, no model), so what is
measured is the API tier and its state store, not generation. The rows, in one run:

- SQLite state store (the default), one replica: the baseline;
- PostgreSQL state store, one replica;
- PostgreSQL state store, two replicas: ``ratio_vs_1_replica`` is the figure issue 16 asks for.

PostgreSQL is a throw-away local cluster (Debian's postgresql, as in the tests) unless
``DOCQA_STATE_POSTGRES_DSN`` names a server (each row then gets a fresh database on it: the user needs
CREATEDB). On a machine whose cores are fewer than the replicas, the client and the database, the ratio
says how much the store costs, not how far replicas scale: read it with the core count beside it.

    python -m bench.replicas
    BENCH_REPLICAS_REQUESTS=400 BENCH_REPLICAS_CONCURRENCY=16 python -m bench.replicas
    DOCQA_API_COMPUTE_THREADS=2 python -m bench.replicas   # each replica's BLAS/OpenMP pools that size

Each replica sizes its numerical thread pools to ``api.compute_threads`` (1 unless the variable above says
otherwise, recorded in the notes): pools sized for the whole machine in every replica made two replicas
serve 0.13-0.17x the requests of one on this machine.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.common import median, percentile, write_results
from rag.settings import Settings

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "data" / "samples"
QUESTIONS = [
    "How long is the warranty on the Sweep S3?",
    "What does it not cover?",
    "How do I reset it?",
]
TURNS_PER_CONVERSATION = 3
START_TIMEOUT_S = 300
STUB_ANSWER = ["The warranty lasts two years [1]."]


@dataclass
class Load:
    """What one row measured."""

    statuses: list[int] = field(default_factory=list)
    latencies_s: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def ok(self) -> int:
        return sum(1 for s in self.statuses if s == 200)

    @property
    def rps(self) -> float:
        return self.ok / self.elapsed_s if self.elapsed_s else 0.0


def row(name: str, replicas: int, load: Load, baseline: Load | None, one_replica: Load | None) -> dict:
    ms = [x * 1000 for x in load.latencies_s]
    return {
        "state store": name,
        "replicas": replicas,
        "requests": len(load.statuses),
        "ok": load.ok,
        "errors": len(load.statuses) - load.ok,
        "seconds": round(load.elapsed_s, 1),
        "req_per_s": round(load.rps, 3),
        "ratio_vs_sqlite_1": round(load.rps / baseline.rps, 2) if baseline and baseline.rps else None,
        "ratio_vs_1_replica": round(load.rps / one_replica.rps, 2) if one_replica and one_replica.rps else None,
        "p50_ms": round(median(ms)) if ms else None,
        "p99_ms": round(percentile(ms, 99)) if ms else None,
    }


async def run_load(urls: list[str], keys: list[str], total: int) -> Load:
    """``len(keys)`` clients, each a run of conversations, until ``total`` requests were sent; request n goes
    to ``urls[n % len(urls)]``."""
    load = Load()
    counter = iter(range(total))
    limits = httpx.Limits(max_connections=len(keys) * len(urls) + 2)

    async with httpx.AsyncClient(timeout=httpx.Timeout(120, connect=10), limits=limits) as client:

        async def worker(key: str) -> None:
            conversation_id, turn = None, 0
            for n in counter:
                body = {"question": QUESTIONS[turn], "collection": "support", "conversation_id": conversation_id}
                started = time.perf_counter()
                response = await client.post(
                    f"{urls[n % len(urls)]}/v1/ask", json=body, headers={"Authorization": f"Bearer {key}"}
                )
                load.latencies_s.append(time.perf_counter() - started)
                load.statuses.append(response.status_code)
                turn += 1
                if response.status_code != 200 or turn >= TURNS_PER_CONVERSATION:
                    conversation_id, turn = None, 0
                else:
                    conversation_id = response.json()["conversation_id"]

        started = time.monotonic()
        await asyncio.gather(*(worker(k) for k in keys))
        load.elapsed_s = time.monotonic() - started
    return load


def start_replica(env: dict[str, str], log: Path) -> tuple[subprocess.Popen, str]:
    from tests.helpers import free_port

    port = free_port()
    with open(log, "wb") as fh:
        process = subprocess.Popen(
            [sys.executable, "-m", "docqa.cli.main", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return process, f"http://127.0.0.1:{port}"


def wait_ready(process: subprocess.Popen, url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"`docqa serve` exited with {process.returncode}:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"`docqa serve` did not become ready within {START_TIMEOUT_S} s:\n{log.read_text()[-2000:]}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


@contextmanager
def postgres() -> Iterator[object]:
    """An object with ``create_database() -> dsn``: the named server, or a throw-away local cluster."""
    given = os.environ.get("DOCQA_STATE_POSTGRES_DSN")
    if given:
        import psycopg

        class Named:
            def create_database(self) -> str:
                from psycopg.conninfo import conninfo_to_dict, make_conninfo

                name = f"docqa_bench_{secrets.token_hex(4)}"
                with psycopg.connect(given, autocommit=True) as conn:
                    conn.execute(f'CREATE DATABASE "{name}"')
                return make_conninfo(**{**conninfo_to_dict(given), "dbname": name})

        yield Named()
        return
    from tests.postgres_server import postgres_bin, postgres_server

    bin_dir = postgres_bin()
    if bin_dir is None:
        raise SystemExit("PostgreSQL is not installed: `make bench-replicas` installs Debian's postgresql")
    with postgres_server(bin_dir) as server:
        yield server


def measure(
    name: str, replicas: int, state_env: dict[str, str], base_env: dict[str, str], settings: Settings, *,
    concurrency: int, total: int, tmp: Path,
) -> Load:
    from docqa.state import open_state

    env = {**base_env, **state_env}
    state = settings.with_overrides(
        state__backend=state_env["DOCQA_STATE_BACKEND"], state__postgres_dsn=state_env.get("DOCQA_STATE_POSTGRES_DSN")
    )
    store = open_state(state)
    try:
        keys = [store.keys.create("staff", name=f"bench-{i}")[0] for i in range(concurrency)]
    finally:
        store.close()
    with ExitStack() as stack:
        started = []
        for i in range(replicas):
            log = tmp / f"{name}-{replicas}-{i}.log"
            process, url = start_replica(env, log)
            stack.callback(stop, process)
            started.append((process, url, log))
        for process, url, log in started:
            wait_ready(process, url, log)
        urls = [url for _, url, _ in started]
        print(f"{name}, {replicas} replica(s): warming up …", flush=True)
        asyncio.run(run_load(urls, keys[:1], 2 * len(urls)))  # each replica loads the index and the tokenizer
        print(f"{name}, {replicas} replica(s): {total} requests from {concurrency} clients …", flush=True)
        return asyncio.run(run_load(urls, keys, total))


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    total = int(os.environ.get("BENCH_REPLICAS_REQUESTS", "240"))
    concurrency = int(os.environ.get("BENCH_REPLICAS_CONCURRENCY", "8"))
    load_at_start = round(os.getloadavg()[0], 2)
    from docqa.services import build
    from tests.fake_model_server import base_url, fake_model_server

    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="docqa-bench-replicas-") as tmp_name:
        tmp = Path(tmp_name)
        data = tmp / "data"
        settings = Settings(data_dir=data)  # api.compute_threads from DOCQA_API_COMPUTE_THREADS, as in serve
        print("indexing the sample corpus …", flush=True)
        files = sorted(p for p in SAMPLES.iterdir() if p.is_file() and p.name != "QUESTIONS.md")
        report = build(settings).ingestor.ingest(files, "support", prune=False)
        if not report.ok:
            raise SystemExit(f"ingest failed: {report.failed}")
        model = stack.enter_context(fake_model_server(STUB_ANSWER))
        pg = stack.enter_context(postgres())
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("DOCQA_")}
        base_env["DOCQA_API_COMPUTE_THREADS"] = str(settings.api.compute_threads)
        base_env.update(
            {
                "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), base_env.get("PYTHONPATH")])),
                "HF_HUB_OFFLINE": "1",
                "DOCQA_DATA_DIR": str(data),
                "DOCQA_LLM_BASE_URL": base_url(model),
                "DOCQA_LOG_LEVEL": "WARNING",
                # Limits high enough never to refuse: each request still takes from its key's bucket.
                "DOCQA_API_RATE_LIMIT_PER_MINUTE": "1000000",
                "DOCQA_API_RATE_BURST": "1000000",
            }
        )
        sqlite_env = {"DOCQA_STATE_BACKEND": "sqlite"}
        kw = {"concurrency": concurrency, "total": total, "tmp": tmp}
        baseline = measure("sqlite", 1, sqlite_env, base_env, settings, **kw)

        def pg_env() -> dict[str, str]:
            return {"DOCQA_STATE_BACKEND": "postgres", "DOCQA_STATE_POSTGRES_DSN": pg.create_database()}

        one = measure("postgres", 1, pg_env(), base_env, settings, **kw)
        two = measure("postgres", 2, pg_env(), base_env, settings, **kw)
    rows = [
        row("sqlite (default)", 1, baseline, baseline, None),
        row("postgres", 1, one, baseline, one),
        row("postgres", 2, two, baseline, one),
    ]
    notes = [
        f"{total} POST /v1/ask requests per row from {concurrency} concurrent clients on 127.0.0.1 (one staff key "
        f"each), {TURNS_PER_CONVERSATION} turns per conversation by conversation_id; with two replicas the "
        "requests alternate between them (round robin), so conversations hop between replicas",
        "model server: an instant stub (tests/fake_model_server.py, scripted answer, no model): the API tier "
        "(auth, rate limit, conversation state, retrieval over the sample corpus) is what is measured",
        "ratio_vs_1_replica: two replicas vs one on the same PostgreSQL store, in this run; ratio_vs_sqlite_1: "
        "against the default store with one replica, in this run",
        f"{os.cpu_count()} cores for the replicas, the client, PostgreSQL and anything else running: two "
        "replicas can only help as far as there are idle cores",
        f"1-min load average at the start: {load_at_start} (other work on the machine slows every figure)",
        f"compute threads per replica (api.compute_threads): {settings.api.compute_threads}",
    ]
    write_results(
        "replicas", rows, command="make bench-replicas", notes=notes, requests=total, concurrency=concurrency
    )
    bad = sum(r["errors"] for r in rows)
    if bad:
        raise SystemExit(f"{bad} request(s) failed")


if __name__ == "__main__":
    main()
