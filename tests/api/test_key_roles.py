"""Staff API keys carry the staff UI's roles: readers ask and list, editors also change documents in their
collections, admins do everything; keys from before roles read as admin. Against the real app and index."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from docqa.api.keys import KeyStore, grant_for_user, hash_key
from docqa.auth.audit import AuditLog
from docqa.auth.users import User
from rag.errors import ConfigError
from rag.settings import Settings
from tests.api.helpers import ApiHandle
from tests.helpers import closed_llm_url

VALVES = b"# Valves\n\nCharlie valves must be inspected every 90 days by a technician.\n"
QUESTION = {"question": "How often are the valves inspected?", "collection": "kb", "allow_passages_only": True}
PASSWORD = "pw-bob-123456\n"
# The key table as the first release created it: no role, no user.
OLD_SCHEMA = """
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY, key_hash TEXT NOT NULL, scope TEXT NOT NULL, collections TEXT NOT NULL,
    origins TEXT NOT NULL, name TEXT, created_at REAL NOT NULL, revoked_at REAL, last_used_at REAL
);
"""


def settings_for(data: Path) -> Settings:
    return Settings(data_dir=data).with_overrides(llm__base_url=closed_llm_url())


def upload(api: ApiHandle, key: str, collection: str = "kb", name: str = "valves.md"):
    return api.client.post(
        f"/v1/collections/{collection}/documents", headers=api.auth(key), files=[("files", (name, VALVES))]
    )


def uploaded(api: ApiHandle, key: str, collection: str = "kb", name: str = "valves.md") -> str:
    """Upload and wait for the ingest; the job's status URL."""
    response = upload(api, key, collection, name)
    assert response.status_code == 202, response.text
    job = api.state.jobs.wait(response.json()["job_id"], 300)  # generous: CI machines are shared
    assert job is not None and job.state == "done", job
    return response.json()["status_url"]


def documents(api: ApiHandle, key: str, collection: str = "kb") -> list[dict]:
    response = api.client.get(f"/v1/collections/{collection}/documents", headers=api.auth(key))
    assert response.status_code == 200, response.text
    return response.json()["documents"]


def refusal(response) -> dict:
    assert response.status_code == 403, response.text
    return response.json()["error"]


class TestRolesOnRoutes:
    @pytest.fixture
    def api(self, make_api: Callable[..., ApiHandle], tmp_path: Path) -> ApiHandle:
        """A fresh data directory whose collection 'kb' holds one document, uploaded with an admin key."""
        api = make_api(settings_for(tmp_path / "data"))
        uploaded(api, api.key())
        return api

    def test_reader_asks_and_lists_but_may_not_change_documents(self, api: ApiHandle) -> None:
        reader = api.key(role="reader", collections=["kb"])
        asked = api.client.post("/v1/ask", json=QUESTION, headers=api.auth(reader))
        assert asked.status_code == 200, asked.text
        assert Path(asked.json()["citations"][0]["source"]).name == "valves.md"
        [doc] = documents(api, reader)

        error = refusal(upload(api, reader))
        assert error["type"] == "role"
        assert "a reader key may not upload documents" in error["message"] and "editor or admin" in error["message"]
        assert "may ask" in error["message"]
        error = refusal(api.client.delete(f"/v1/collections/kb/documents/{doc['id']}", headers=api.auth(reader)))
        assert "may not delete documents" in error["message"]
        assert refusal(api.client.delete("/v1/collections/kb", headers=api.auth(reader)))["type"] == "role"
        assert refusal(api.client.get("/metrics", headers=api.auth(reader)))["type"] == "role"
        assert [d["name"] for d in documents(api, api.key())] == ["valves.md"]  # nothing changed

    def test_reader_stays_in_its_collections(self, api: ApiHandle) -> None:
        uploaded(api, api.key(), "other")
        reader = api.key(role="reader", collections=["kb"])
        asked = api.client.post("/v1/ask", json={**QUESTION, "collection": "other"}, headers=api.auth(reader))
        assert refusal(asked)["type"] == "collection_forbidden"
        listed = api.client.get("/v1/collections/other/documents", headers=api.auth(reader))
        assert refusal(listed)["type"] == "collection_forbidden"
        names = [c["name"] for c in api.client.get("/v1/collections", headers=api.auth(reader)).json()["collections"]]
        assert names == ["kb"]

    def test_editor_changes_documents_in_granted_collections_only(self, api: ApiHandle) -> None:
        editor = api.key(role="editor", collections=["kb"])
        status_url = uploaded(api, editor, name="second.md")
        assert api.client.get(status_url, headers=api.auth(editor)).json()["state"] == "done"
        assert sorted(d["name"] for d in documents(api, editor)) == ["second.md", "valves.md"]

        assert refusal(upload(api, editor, "other"))["type"] == "collection_forbidden"
        assert not (api.state.settings.state_dir / "uploads" / "other").exists()
        target = next(d for d in documents(api, editor) if d["name"] == "valves.md")
        deleted = api.client.delete(f"/v1/collections/kb/documents/{target['id']}", headers=api.auth(editor))
        assert deleted.status_code == 200, deleted.text
        error = refusal(api.client.delete("/v1/collections/kb", headers=api.auth(editor)))
        assert "a editor key" not in error["message"] and "an admin key" in error["message"]
        assert refusal(api.client.get("/metrics", headers=api.auth(editor)))["type"] == "role"
        # The API's uploads and deletes are in the same audit trail as the staff UI's, by key.
        trail = {(e.action, e.target, e.collection) for e in api.state.store.audit.list() if e.actor.startswith("key:")}
        assert {("upload", "second.md", "kb"), ("delete", "valves.md", "kb")} <= trail

    def test_jobs_are_for_editors(self, api: ApiHandle) -> None:
        editor = api.key(role="editor", collections=["kb"])
        status_url = uploaded(api, editor, name="second.md")
        reader = api.key(role="reader", collections=["kb"])
        error = refusal(api.client.get(status_url, headers=api.auth(reader)))
        assert "may not follow ingest jobs" in error["message"]

    def test_admin_does_everything(self, api: ApiHandle) -> None:
        admin = api.key(role="admin")
        status_url = uploaded(api, admin, "other")
        assert api.client.get(status_url, headers=api.auth(admin)).status_code == 200
        assert api.client.post("/v1/ask", json=QUESTION, headers=api.auth(admin)).status_code == 200
        [doc] = documents(api, admin)
        deleted = api.client.delete(f"/v1/collections/kb/documents/{doc['id']}", headers=api.auth(admin))
        assert deleted.status_code == 200, deleted.text
        assert api.client.delete("/v1/collections/other", headers=api.auth(admin)).status_code == 200
        assert ("drop_collection", "other") in {(e.action, e.target) for e in api.state.store.audit.list()}
        assert api.client.get("/metrics", headers=api.auth(admin)).status_code == 200


class TestKeysFromBeforeRoles:
    def test_an_old_key_is_an_admin_for_every_collection(
        self, make_api: Callable[..., ApiHandle], tmp_path: Path
    ) -> None:
        data = tmp_path / "data"
        path = KeyStore.for_settings(Settings(data_dir=data)).path
        path.parent.mkdir(parents=True)
        old_key = "dq_0123456789ab_" + "A" * 43
        with sqlite3.connect(path) as conn:
            conn.executescript(OLD_SCHEMA)
            conn.execute(
                "INSERT INTO api_keys VALUES (?, ?, 'staff', '[]', '[]', 'ops script', ?, NULL, NULL)",
                ("0123456789ab", hash_key(old_key), time.time()),
            )
        conn.close()

        api = make_api(settings_for(data))
        status_url = uploaded(api, old_key)
        assert api.client.get(status_url, headers=api.auth(old_key)).status_code == 200
        assert api.client.post("/v1/ask", json=QUESTION, headers=api.auth(old_key)).status_code == 200
        [doc] = documents(api, old_key)
        deleted = api.client.delete(f"/v1/collections/kb/documents/{doc['id']}", headers=api.auth(old_key))
        assert deleted.status_code == 200, deleted.text
        assert api.client.get("/metrics", headers=api.auth(old_key)).status_code == 200
        assert api.client.delete("/v1/collections/kb", headers=api.auth(old_key)).status_code == 200

        [record] = KeyStore(path).list()
        assert (record.name, record.role, record.collections, record.user) == ("ops script", "admin", (), None)


class TestKeysCli:
    def run(self, tmp_path: Path, *args: str, stdin: str | None = None):
        from docqa.cli.main import app

        return CliRunner().invoke(
            app, list(args), env={"DOCQA_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"}, input=stdin
        )

    def test_create_with_roles_list_shows_them_and_both_are_audited(self, tmp_path: Path) -> None:
        added = self.run(tmp_path, "users", "add", "bob", "--role", "editor", "--collections", "kb", stdin=PASSWORD)
        assert added.exit_code == 0, added.output
        for args in (
            ["--scope", "staff", "--name", "ops"],
            ["--scope", "staff", "--role", "reader", "-c", "kb", "--name", "bot"],
            ["--scope", "staff", "--user", "bob"],
        ):
            created = self.run(tmp_path, "keys", "create", *args, "--json")
            assert created.exit_code == 0, created.output
        listed = self.run(tmp_path, "keys", "list", "--json")
        rows = [(k["name"], k["role"], k["collections"], k["user"]) for k in json.loads(listed.stdout)]
        assert rows == [("ops", "admin", [], None), ("bot", "reader", ["kb"], None), (None, "editor", ["kb"], "bob")]
        table = self.run(tmp_path, "keys", "list")
        assert "reader" in table.stdout and "editor" in table.stdout and "bob" in table.stdout

        ops, bot, bobs = (k["id"] for k in json.loads(listed.stdout))
        assert self.run(tmp_path, "keys", "revoke", bot).exit_code == 0
        events = AuditLog.for_settings(Settings(data_dir=tmp_path / "data")).list()
        keys = [(e.action, e.target, e.detail["role"]) for e in events if e.action.startswith("key_")]
        assert keys == [
            ("key_create", ops, "admin"),
            ("key_create", bot, "reader"),
            ("key_create", bobs, "editor"),
            ("key_revoke", bot, "reader"),
        ]

    def test_the_user_must_exist_and_the_key_may_not_exceed_them(self, tmp_path: Path) -> None:
        unknown = self.run(tmp_path, "keys", "create", "--scope", "staff", "--user", "nobody")
        assert unknown.exit_code != 0 and "no user 'nobody'" in unknown.output
        self.run(tmp_path, "users", "add", "bob", "--role", "editor", "--collections", "kb", stdin=PASSWORD)
        higher = self.run(tmp_path, "keys", "create", "--scope", "staff", "--user", "bob", "--role", "admin")
        assert isinstance(higher.exception, ConfigError) and "cannot be admin" in str(higher.exception)
        assert self.run(tmp_path, "keys", "list", "--json").stdout.strip() == "[]"


class TestGrants:
    def test_a_key_for_a_user_gets_at_most_their_role_and_collections(self) -> None:
        bob = User("bob", "editor", ("kb",), 0.0)
        assert grant_for_user(bob, None, ()) == ("editor", ("kb",))
        assert grant_for_user(bob, "reader", ()) == ("reader", ("kb",))
        with pytest.raises(ConfigError, match="not granted collection"):
            grant_for_user(bob, "reader", ["other"])
        admin = User("ann", "admin", (), 0.0)
        assert grant_for_user(admin, "reader", ["other"]) == ("reader", ("other",))

    def test_widget_keys_have_no_role_to_choose(self, tmp_path: Path) -> None:
        store = KeyStore(tmp_path / "keys.sqlite")
        with pytest.raises(ConfigError, match="widget key has no role"):
            store.create("widget", collections=["kb"], origins=["https://a.example"], role="editor")
        _, widget = store.create("widget", collections=["kb"], origins=["https://a.example"])
        assert widget.role == "reader" and not widget.at_least("editor")
