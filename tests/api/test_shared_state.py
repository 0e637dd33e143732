"""Two API replicas on one shared state store (issue 16): two real `docqa serve` processes, each on its own
127.0.0.1 port, on one real PostgreSQL database and one data directory (the index, read by both). A
conversation started on one continues on the other; a key revoked on one machine is refused by both at
once; requests to both count against one rate limit; an ingest job sent to one is visible from the other.

The model server is the fake one (tests/fake_model_server.py, an instant scripted answer): what is under
test is the state the replicas share, not the answer's quality.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from docqa.state import StateStore, open_state
from rag.settings import Settings
from tests.fake_model_server import base_url, fake_model_server
from tests.helpers import REPO, free_port
from tests.postgres_server import PostgresServer

START_TIMEOUT_S = 300  # two processes loading the embedder on a small, busy machine
JOB_TIMEOUT_S = 300
WARRANTY = "How long is the warranty on the Sweep S3?"
FOLLOW_UP = "And what does it not cover?"
PIECES = ["The warranty lasts two years [1]."]


def _die_with_parent() -> None:
    import ctypes

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Replica:
    name: str
    url: str
    process: subprocess.Popen
    log: Path

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=httpx.Timeout(120, connect=5))


@dataclass
class Deployment:
    a: Replica
    b: Replica
    settings: Settings  # what the replicas run with (the test's own view of the shared store)
    env: dict[str, str]
    store: StateStore
    model: object  # the fake model server: .requests holds what it was sent

    def key(self) -> str:
        return self.store.keys.create("staff", name="test")[0]


def _start(name: str, env: dict[str, str], logs: Path) -> Replica:
    port = free_port()
    log = logs / f"{name}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "docqa.cli.main", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=logs,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
    return Replica(name, f"http://127.0.0.1:{port}", process, log)


def _wait_ready(replica: Replica) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if replica.process.poll() is not None:
            pytest.fail(f"replica {replica.name} exited: {replica.log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{replica.url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"replica {replica.name} did not start: {replica.log.read_text()[-3000:]}")
        time.sleep(0.25)


def _stop(replica: Replica) -> None:
    replica.process.terminate()
    try:
        replica.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        replica.process.kill()
        replica.process.wait()


@pytest.fixture(scope="module")
def deployment(
    postgres: PostgresServer, api_data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("replicas")
    data = root / "data"
    shutil.copytree(api_data_dir, data)  # the corpus, on storage both replicas read (and the job writes)
    dsn = postgres.create_database()
    with fake_model_server(PIECES) as model:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCQA_")}
        env.update(
            {
                "PYTHONPATH": os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
                "HF_HUB_OFFLINE": "1",
                "DOCQA_DATA_DIR": str(data),
                "DOCQA_STATE_BACKEND": "postgres",
                "DOCQA_STATE_POSTGRES_DSN": dsn,
                "DOCQA_LLM_BASE_URL": base_url(model),
                # A key's burst is five requests, then one a minute: what the rate-limit test spends.
                "DOCQA_API_RATE_LIMIT_PER_MINUTE": "1",
                "DOCQA_API_RATE_BURST": "5",
            }
        )
        settings = Settings(data_dir=data, state={"backend": "postgres", "postgres_dsn": dsn})
        store = open_state(settings)
        a, b = _start("a", env, root), _start("b", env, root)
        try:
            _wait_ready(a)
            _wait_ready(b)
            yield Deployment(a, b, settings, env, store, model)
        finally:
            _stop(a)
            _stop(b)
            store.close()


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_a_conversation_started_on_one_continues_on_the_other(deployment: Deployment) -> None:
    key = deployment.key()
    with deployment.a.client() as a, deployment.b.client() as b:
        first = a.post("/v1/ask", json={"question": WARRANTY, "collection": "support"}, headers=auth(key))
        assert first.status_code == 200, first.text
        conversation_id = first.json()["conversation_id"]
        sent_before = len(deployment.model.requests)
        follow = b.post(
            "/v1/ask",
            json={"question": FOLLOW_UP, "collection": "support", "conversation_id": conversation_id},
            headers=auth(key),
        )
        assert follow.status_code == 200, follow.text
        assert follow.json()["conversation_id"] == conversation_id
        # B put A's turn in front of the model: the history came from the shared store.
        prompts = [m["content"] for r in deployment.model.requests[sent_before:] for m in r["messages"]]
        assert any(WARRANTY in p for p in prompts), prompts
        third = a.post(
            "/v1/ask",
            json={"question": "Is that all?", "collection": "support", "conversation_id": conversation_id},
            headers=auth(key),
        )
        assert third.status_code == 200, third.text
    conversation = deployment.store.conversations(3600).get(
        conversation_id, deployment.store.keys.verify(key).id, "support"
    )
    assert conversation is not None and conversation.turns == 3
    assert [t["content"] for t in conversation.history if t["role"] == "user"] == [WARRANTY, FOLLOW_UP, "Is that all?"]


def test_a_key_revoked_on_one_machine_is_refused_by_both_at_once(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from docqa.cli.main import app

    key = deployment.key()
    key_id = key.split("_")[1]
    with deployment.a.client() as a, deployment.b.client() as b:
        assert a.get("/v1/collections", headers=auth(key)).status_code == 200
        assert b.get("/v1/collections", headers=auth(key)).status_code == 200  # b has seen the key valid
        for name, value in deployment.env.items():
            if name.startswith("DOCQA_"):
                monkeypatch.setenv(name, value)
        revoked = CliRunner().invoke(app, ["keys", "revoke", key_id])  # `docqa keys revoke` on a third machine
        assert revoked.exit_code == 0, revoked.output
        for replica in (b, a):
            refused = replica.get("/v1/collections", headers=auth(key))
            assert refused.status_code == 401 and refused.json()["error"]["type"] == "invalid_key"


def test_rate_limits_hold_across_both(deployment: Deployment) -> None:
    """Five requests split over the two replicas spend the key's burst; the next is refused by either."""
    key = deployment.key()
    with deployment.a.client() as a, deployment.b.client() as b:
        statuses = [client.get("/v1/collections", headers=auth(key)).status_code for client in (a, b, a, b, a)]
        assert statuses == [200] * 5
        for client in (b, a):
            limited = client.get("/v1/collections", headers=auth(key))
            assert limited.status_code == 429 and limited.json()["error"]["type"] == "rate_limited"
            assert int(limited.headers["Retry-After"]) > 0


def test_an_ingest_job_sent_to_one_is_visible_from_the_other(deployment: Deployment) -> None:
    key = deployment.key()
    doc = b"# Valves\n\nCharlie valves must be inspected every 90 days by a technician.\n"
    with deployment.a.client() as a, deployment.b.client() as b:
        sent = a.post("/v1/collections/kb/documents", headers=auth(key), files=[("files", ("valves.md", doc))])
        assert sent.status_code == 202, sent.text
        job_id = sent.json()["job_id"]
        seen = b.get(f"/v1/jobs/{job_id}", headers=auth(key))
        assert seen.status_code == 200, seen.text
        assert seen.json()["collection"] == "kb" and seen.json()["files"][0]["name"] == "valves.md"
        # Wait on the store itself (polling b would spend the key's rate limit), then ask b once more.
        deadline = time.monotonic() + JOB_TIMEOUT_S
        while (job := deployment.store.jobs.get(job_id)) is not None and job.finished_at is None:
            assert time.monotonic() < deadline, f"job {job_id} did not finish: {job.as_json()}"
            time.sleep(0.5)
        done = b.get(f"/v1/jobs/{job_id}", headers=auth(key)).json()
        assert done["state"] == "done" and done["files"][0]["status"] == "added", done
        assert done["progress"]["files_done"] == 1 and done["progress"]["chunks"] >= 1
        listed = b.get("/v1/collections/kb/documents", headers=auth(key))  # the index, read from shared storage
        assert [d["name"] for d in listed.json()["documents"]] == ["valves.md"]
