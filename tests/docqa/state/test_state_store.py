"""The state store's contract, run against both backends: the SQLite default (files and this process's
memory) and PostgreSQL (a real server, started once per session). What only a shared store can do (a
second store on the same database sees the first one's writes at once) is checked on PostgreSQL alone.
"""

from __future__ import annotations

import io
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from docqa.api.jobs import Job, JobFile
from docqa.state import StateStore, open_state
from rag.errors import ConfigError, DocqaError, MissingDependencyError, StateStoreError
from rag.feedback import read_jsonl
from rag.settings import Settings
from tests.helpers import free_port

SITE = "https://shop.example.com"


def settings_for(backend: str, data_dir: Path, dsn: str | None = None) -> Settings:
    state = {"backend": backend, "postgres_dsn": dsn} if dsn else {"backend": backend}
    return Settings(data_dir=data_dir, state=state)


@pytest.fixture(params=["sqlite", "postgres"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], StateStore]]:
    """``open_store()``: a store of the backend under test; each call opens another on the same data (as
    another process would). All are closed at teardown."""
    dsn = request.getfixturevalue("postgres_dsn") if request.param == "postgres" else None
    settings = settings_for(request.param, tmp_path / "data", dsn)
    opened: list[StateStore] = []

    def make() -> StateStore:
        store = open_state(settings)
        opened.append(store)
        return store

    try:
        yield make
    finally:
        for store in opened:
            store.close()


@pytest.fixture
def store(open_store: Callable[[], StateStore]) -> StateStore:
    return open_store()


@pytest.fixture
def shared(postgres_dsn: str, tmp_path: Path) -> Iterator[tuple[StateStore, StateStore]]:
    """Two PostgreSQL stores on one database: two replicas' views."""
    settings = settings_for("postgres", tmp_path / "data", postgres_dsn)
    first, second = open_state(settings), open_state(settings)
    try:
        yield first, second
    finally:
        first.close()
        second.close()


class TestKeys:
    def test_create_verify_revoke(self, store: StateStore) -> None:
        key, record = store.keys.create("widget", collections=["support"], origins=[SITE], name="shop")
        assert store.keys.verify(key) == record and record.origins == (SITE,)
        assert store.keys.verify(key[:-1] + ("A" if key[-1] != "A" else "B")) is None  # right id, wrong secret
        assert store.keys.verify("not-a-key") is None
        assert store.keys.known_origins() == {SITE}
        revoked = store.keys.revoke(record.id)
        assert revoked.revoked_at is not None and store.keys.verify(key) is None
        assert store.keys.list() == [] and [k.id for k in store.keys.list(include_revoked=True)] == [record.id]
        assert store.keys.revoke(key).revoked_at == revoked.revoked_at  # by the full key; twice is harmless
        with pytest.raises(DocqaError, match="no API key with id"):
            store.keys.revoke("000000000000")

    def test_bad_keys_are_refused_with_the_option_to_fix(self, store: StateStore) -> None:
        with pytest.raises(ConfigError, match="--origin"):
            store.keys.create("widget", collections=["support"])
        with pytest.raises(ConfigError, match="unknown scope"):
            store.keys.create("admin")

    def test_only_the_hash_is_stored(self, postgres_dsn: str, shared: tuple[StateStore, StateStore]) -> None:
        import psycopg

        key, _ = shared[0].keys.create("staff")
        with psycopg.connect(postgres_dsn) as conn:
            rows = conn.execute("SELECT * FROM docqa_api_keys").fetchall()
        assert key.split("_", 2)[2] not in repr(rows) and key not in repr(rows)

    def test_a_revocation_is_seen_by_another_replica_at_once(self, shared: tuple[StateStore, StateStore]) -> None:
        a, b = shared
        key, record = a.keys.create("staff")
        assert b.keys.verify(key) == record  # b has seen it valid: no cache may keep it so
        a.keys.revoke(record.id)
        assert b.keys.verify(key) is None


class TestConversations:
    def test_bound_to_key_and_collection_and_continued(self, open_store: Callable[[], StateStore]) -> None:
        conversations = open_store().conversations(ttl_s=3600)
        history = [{"role": "user", "content": "q0"}, {"role": "assistant", "content": "a0"}]
        conv = conversations.start("key1", "support", history)
        assert conv.history == history and conv.turns == 1
        got = conversations.get(conv.id, "key1", "support")
        assert got is not None and got.history == history
        conversations.append(got, "q1", "a1")
        again = conversations.get(conv.id, "key1", "support")
        assert again is not None and again.turns == 2 and again.history[-1] == {"role": "assistant", "content": "a1"}
        assert conversations.get(conv.id, "key2", "support") is None
        assert conversations.get(conv.id, "key1", "internal") is None
        assert conversations.get("no-such-id", "key1", "support") is None

    def test_idle_conversations_expire(self, store: StateStore) -> None:
        conversations = store.conversations(ttl_s=0.2)
        conv = conversations.start("key1", "support")
        time.sleep(0.5)  # well past the time to live
        assert conversations.get(conv.id, "key1", "support") is None

    def test_one_started_on_a_replica_continues_on_another(self, shared: tuple[StateStore, StateStore]) -> None:
        a, b = (s.conversations(ttl_s=3600) for s in shared)
        conv = a.start("key1", "support")
        a.append(conv, "How long is the warranty?", "Two years [1].")
        on_b = b.get(conv.id, "key1", "support")
        assert on_b is not None and on_b.history[0]["content"] == "How long is the warranty?"
        b.append(on_b, "And the battery?", "One year [2].")
        back = a.get(conv.id, "key1", "support")
        assert back is not None and back.turns == 2 and back.history[2]["content"] == "And the battery?"


class TestRateLimits:
    def test_burst_then_steady_rate(self, store: StateStore) -> None:
        limiter = store.rate_limiter("caller", per_minute=60, burst=3)
        assert limiter.enabled and [limiter.take("k") for _ in range(3)] == [0.0, 0.0, 0.0]
        wait = limiter.take("k")
        assert 0 < wait <= 1.0  # one token a second
        assert limiter.take("other") == 0.0
        assert store.rate_limiter("off", per_minute=0, burst=3).take("k") == 0.0

    def test_wait_tells_without_spending(self, store: StateStore) -> None:
        """What the UI's per-address sign-in limit asks before it checks a password."""
        limiter = store.rate_limiter("sign_in_address", per_minute=0.5, burst=2)
        assert limiter.wait("10.0.0.9") == 0.0 and limiter.wait("10.0.0.9") == 0.0, "asking spends nothing"
        assert limiter.take("10.0.0.9") == 0.0 and limiter.wait("10.0.0.9") == 0.0
        assert limiter.take("10.0.0.9") == 0.0
        assert 110 < limiter.wait("10.0.0.9") <= 120  # one token every two minutes
        assert limiter.wait("10.0.0.10") == 0.0
        assert store.rate_limiter("off", per_minute=0, burst=1).wait("k") == 0.0

    def test_the_same_name_counts_in_the_same_buckets(self, store: StateStore) -> None:
        """As in a shared database: the UI asks for its limiter again on every sign-in attempt."""
        assert store.rate_limiter("sign_in_address", per_minute=1, burst=1).take("k") == 0.0
        assert store.rate_limiter("sign_in_address", per_minute=1, burst=1).wait("k") > 0

    def test_limiters_with_other_names_have_their_own_buckets(self, store: StateStore) -> None:
        caller = store.rate_limiter("caller", per_minute=1, burst=1)
        site = store.rate_limiter("site", per_minute=1, burst=1)
        assert caller.take("k") == 0.0 and caller.take("k") > 0
        assert site.take("k") == 0.0

    def test_concurrent_takes_never_overspend(self, store: StateStore) -> None:
        """Twenty requests at once against a burst of five (one token a minute): exactly five pass."""
        limiter = store.rate_limiter("caller", per_minute=1, burst=5)
        results: list[float] = []
        barrier = threading.Barrier(20)

        def take() -> None:
            barrier.wait()
            results.append(limiter.take("k"))

        threads = [threading.Thread(target=take) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(1 for r in results if r == 0.0) == 5

    def test_one_limit_across_replicas(self, shared: tuple[StateStore, StateStore]) -> None:
        a, b = (s.rate_limiter("caller", per_minute=1, burst=4) for s in shared)
        assert [limiter.take("k") for limiter in (a, b, a, b)] == [0.0] * 4
        assert a.take("k") > 0 and b.take("k") > 0


class TestJobs:
    def job(self) -> Job:
        return Job(id="j1", collection="kb", files=[JobFile("a.md", "/srv/a.md"), JobFile("b.md", "/srv/b.md")])

    def test_progress_is_recorded(self, store: StateStore) -> None:
        job = self.job()
        store.jobs.add(job)
        job.state, job.started_at, job.files_done, job.chunks = "running", time.time(), 1, 7
        job.files[0].status = "added"
        store.jobs.save(job)
        got = store.jobs.get("j1")
        assert got is not None and got.as_json() == job.as_json()
        assert got.as_json()["progress"] == {"files_total": 2, "files_done": 1, "chunks": 7, "fraction": 0.5}
        assert store.jobs.get("nope") is None

    def test_visible_from_another_replica(self, shared: tuple[StateStore, StateStore]) -> None:
        a, b = shared
        job = self.job()
        a.jobs.add(job)
        assert b.jobs.get("j1").state == "queued"
        job.state, job.finished_at, job.error = "failed", time.time(), "b.md: unreadable"
        a.jobs.save(job)
        assert b.jobs.get("j1").as_json() == job.as_json()


class TestFeedback:
    def test_add_update_list_export_delete(self, store: StateStore) -> None:
        citations = [{"n": 1, "source": "manual.pdf", "page": 3, "text": "Two years."}]
        up = store.feedback.add(rating="up", question="q1", answer="a1", citations=citations, collection="support")
        down = store.feedback.add(rating="down", question="q2", answer="a2", comment="  wrong  ")
        assert down.comment == "wrong"
        assert store.feedback.update(down.id, rating="up", comment="").comment is None
        assert [r.id for r in store.feedback.list()] == [up.id, down.id]
        assert [r.id for r in store.feedback.list(rating="up")] == [up.id, down.id]
        buffer = io.StringIO()
        assert store.feedback.export_jsonl(buffer) == 2
        assert json.loads(buffer.getvalue().splitlines()[0])["citations"] == citations
        assert store.feedback.delete(up.id) and not store.feedback.delete(up.id)
        assert store.feedback.get(up.id) is None and store.feedback.get(down.id).rating == "up"
        with pytest.raises(DocqaError, match="rating must be"):
            store.feedback.add(rating="meh", question="q", answer="a")
        with pytest.raises(DocqaError, match="no feedback"):
            store.feedback.update("nope", rating="up")

    def test_export_file_reads_back(self, store: StateStore, tmp_path: Path) -> None:
        store.feedback.add(rating="up", question="q", answer="a", model="docqa-grounded")
        out = tmp_path / "fb.jsonl"
        assert store.feedback.export_jsonl(out) == 1
        assert read_jsonl(out)[0].model == "docqa-grounded"


PASSWORD = "correct horse battery"


class TestUsers:
    def test_add_authenticate_set_role_remove(self, store: StateStore) -> None:
        from docqa.auth.errors import SignInError

        user = store.users.add("ann", PASSWORD, "editor", ["support", "support", "*"])
        assert (user.role, user.collections) == ("editor", ("support",))
        assert user.can_edit("support") and not user.can_edit("legal") and not user.can_read("legal")
        signed = store.users.authenticate("ann", PASSWORD)
        assert signed.name == "ann" and signed.last_sign_in_at is not None
        with pytest.raises(SignInError, match="wrong name or password"):
            store.users.authenticate("ann", PASSWORD + "!")
        with pytest.raises(SignInError, match="wrong name or password"):  # an unknown name reads the same
            store.users.authenticate("nobody", PASSWORD)
        with pytest.raises(DocqaError, match="exists already"):
            store.users.add("ann", PASSWORD, "reader")
        admin = store.users.set_role("ann", "admin", [])
        assert admin.role == "admin" and admin.can_edit("legal") and store.users.get("ann").role == "admin"
        assert [u.name for u in store.users.list()] == ["ann"]
        store.users.remove("ann")
        assert store.users.get("ann") is None
        with pytest.raises(DocqaError, match="no user 'ann'"):
            store.users.remove("ann")

    def test_only_an_argon2_hash_is_stored(self, store: StateStore, tmp_path: Path) -> None:
        store.users.add("ann", PASSWORD, "reader")
        found = store.users._fetch("ann")  # the stored hash, as the backend holds it
        assert found is not None and found[1].startswith("$argon2id$") and PASSWORD not in found[1]

    def test_bad_input_is_refused_with_the_fix(self, store: StateStore) -> None:
        with pytest.raises(ConfigError, match="unknown role"):
            store.users.add("ann", PASSWORD, "owner")
        with pytest.raises(ConfigError, match="too short"):
            store.users.add("ann", "short", "reader")
        with pytest.raises(ConfigError, match="invalid user name"):
            store.users.add("ann; drop", PASSWORD, "reader")

    def test_five_failures_lock_even_the_right_password(self, store: StateStore) -> None:
        from docqa.auth.errors import AccountLockedError, SignInError

        store.users.add("ann", PASSWORD, "reader")
        for _ in range(4):
            with pytest.raises(SignInError) as caught:
                store.users.authenticate("ann", "wrong password")
            assert not isinstance(caught.value, AccountLockedError)
        with pytest.raises(AccountLockedError, match="locked") as locked:
            store.users.authenticate("ann", "wrong password")
        assert 890 < locked.value.seconds <= 900 and "15 minute" in str(locked.value)
        with pytest.raises(AccountLockedError):
            store.users.authenticate("ann", PASSWORD)
        store.users.unlock("ann")
        assert store.users.authenticate("ann", PASSWORD).failures == 0

    def test_a_success_resets_the_count_and_a_lock_ends(self, open_store: Callable[[], StateStore]) -> None:
        from docqa.auth.errors import AccountLockedError, SignInError

        store = open_store()
        store.users.add("ann", PASSWORD, "reader")
        for _ in range(4):
            with pytest.raises(SignInError):
                store.users.authenticate("ann", "wrong password")
        store.users.authenticate("ann", PASSWORD)
        for _ in range(4):  # four more: still not locked, the count started again
            with pytest.raises(SignInError) as caught:
                store.users.authenticate("ann", "wrong password")
            assert not isinstance(caught.value, AccountLockedError)
        store.users.settings = store.users.settings.model_copy(update={"lockout_s": 1})
        with pytest.raises(AccountLockedError):
            store.users.authenticate("ann", "wrong password")
        time.sleep(1.2)
        assert store.users.authenticate("ann", PASSWORD).name == "ann"

    def test_a_lock_holds_in_another_process(self, open_store: Callable[[], StateStore]) -> None:
        from docqa.auth.errors import AccountLockedError, SignInError

        first, second = open_store(), open_store()
        first.users.add("ann", PASSWORD, "reader")
        for store in (first, second, first, second):
            with pytest.raises(SignInError):
                store.users.authenticate("ann", "wrong password")
        with pytest.raises(AccountLockedError):
            second.users.authenticate("ann", "wrong password")
        with pytest.raises(AccountLockedError):
            first.users.authenticate("ann", PASSWORD)


class TestAudit:
    def test_events_in_order_and_exported(self, open_store: Callable[[], StateStore], tmp_path: Path) -> None:
        store = open_store()
        store.audit.record("ann", "sign_in", detail={"role": "editor"})
        store.audit.record("ann", "upload", collection="support", target="guide.md", detail={"result": "added"})
        open_store().audit.record("bob", "sign_in_failed", outcome="refused")  # another process's event
        events = store.audit.list()
        assert [(e.actor, e.action, e.outcome) for e in events] == [
            ("ann", "sign_in", "ok"),
            ("ann", "upload", "ok"),
            ("bob", "sign_in_failed", "refused"),
        ]
        assert events[1].collection == "support" and events[1].target == "guide.md"
        out = tmp_path / "audit.jsonl"
        assert store.audit.export_jsonl(out) == 3
        lines = [json.loads(line) for line in out.read_text().splitlines()]
        assert lines[1]["detail"] == {"result": "added"} and lines[0]["at"].endswith("+00:00")
        with pytest.raises(DocqaError, match="unknown audit action"):
            store.audit.record("ann", "dance")

    def test_feedback_carries_the_user(self, store: StateStore) -> None:
        record = store.feedback.add(rating="up", question="q", answer="a", user="ann")
        assert store.feedback.get(record.id).user == "ann"
        buffer = io.StringIO()
        store.feedback.export_jsonl(buffer)
        assert json.loads(buffer.getvalue())["user"] == "ann"


def test_a_feedback_file_from_before_sign_in_gains_the_user_column(tmp_path: Path) -> None:
    """A feedback.sqlite written before verdicts carried a user is read, and written to, as it stands."""
    import sqlite3

    from rag.feedback import FeedbackStore

    path = tmp_path / "feedback.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE feedback (id TEXT PRIMARY KEY, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, "
            "rating TEXT NOT NULL, comment TEXT, question TEXT NOT NULL, answer TEXT NOT NULL, "
            "citations TEXT NOT NULL, collection TEXT, model TEXT)"
        )
        then = "2020-01-01T00:00:00+00:00"
        conn.execute("INSERT INTO feedback VALUES ('old', ?, ?, 'up', NULL, 'q', 'a', '[]', NULL, NULL)", (then, then))
    conn.close()
    store = FeedbackStore(path)
    assert [(r.id, r.user) for r in store.list()] == [("old", None)]
    store.add(rating="down", question="q2", answer="a2", user="ann")
    assert [r.user for r in store.list()] == [None, "ann"]


class TestPostgresSetup:
    def test_two_processes_creating_the_schema_at_once(self, postgres_dsn: str, tmp_path: Path) -> None:
        """Eight stores open a fresh database at the same moment: one creates the tables, none fails."""
        settings = settings_for("postgres", tmp_path, postgres_dsn)
        stores = [open_state(settings) for _ in range(8)]
        errors: list[BaseException] = []
        barrier = threading.Barrier(len(stores))

        def first_use(store: StateStore) -> None:
            barrier.wait()
            try:
                store.keys.list()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=first_use, args=(s,)) for s in stores]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for store in stores:
            store.close()
        assert errors == []

    def test_missing_dsn_names_the_setting(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match=r"state\.postgres_dsn \(DOCQA_STATE_POSTGRES_DSN\)"):
            open_state(settings_for("postgres", tmp_path))

    def test_unreachable_server_is_a_clear_error_without_the_password(self, tmp_path: Path) -> None:
        dsn = f"postgresql://docqa:s3cret-pw@127.0.0.1:{free_port()}/docqa"
        store = open_state(settings_for("postgres", tmp_path, dsn).with_overrides(state__connect_timeout_s=2))
        with pytest.raises(StateStoreError) as caught:
            store.keys.list()
        message = str(caught.value)
        assert "postgresql://docqa@127.0.0.1" in message and "state.postgres_dsn" in message
        assert "s3cret-pw" not in message

    def test_wrong_password_is_refused_without_echoing_it(self, postgres: object, tmp_path: Path) -> None:
        dsn = postgres.dsn().replace(postgres.password, "not-the-password")
        store = open_state(settings_for("postgres", tmp_path, dsn))
        with pytest.raises(StateStoreError, match="password authentication failed") as caught:
            store.keys.list()
        assert "not-the-password" not in str(caught.value)

    def test_missing_driver_names_the_install_command(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        monkeypatch.setitem(sys.modules, "psycopg", None)
        with pytest.raises(MissingDependencyError, match=r"docqa\[postgres\]"):
            open_state(settings_for("postgres", tmp_path, "postgresql://u@127.0.0.1/db"))

    def test_the_dsn_is_a_secret_in_printed_settings(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from typer.testing import CliRunner

        from docqa.cli.main import app
        from docqa.cli.ui_cmds import settings_env

        monkeypatch.setenv("DOCQA_STATE_BACKEND", "postgres")
        monkeypatch.setenv("DOCQA_STATE_POSTGRES_DSN", "postgresql://docqa:s3cret-pw@db.internal/docqa")
        result = CliRunner().invoke(app, ["config", "--json"])
        assert result.exit_code == 0 and "s3cret-pw" not in result.stdout
        assert json.loads(result.stdout)["state"]["backend"] == "postgres"
        # The UI process is handed the value itself (it rebuilds its settings from the environment).
        from rag.settings import load_settings

        state = json.loads(settings_env(load_settings())["DOCQA_STATE"])
        assert state["postgres_dsn"] == "postgresql://docqa:s3cret-pw@db.internal/docqa"
