"""The HTTP API against the real app and a real index (FAISS + BM25 + SQLite), with the model server down:
keys and their rules, CORS, limits, the 503 and passages-only paths, documents and jobs, OpenAPI, metrics.
The answering paths with the real model are in test_api_live.py."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from docqa.api.keys import KeyStore, normalize_origin
from rag.errors import ConfigError, DocqaError
from rag.settings import Settings
from tests.api.helpers import ApiHandle
from tests.helpers import closed_llm_url

SITE = "https://shop.example.com"
OTHER_SITE = "https://evil.example.net"
BATTERY = "What is the battery capacity of the Sweep S3?"  # QUESTIONS.md 1: sweep_s3_manual.pdf, page 1


def ask_body(question: str = BATTERY, collection: str = "support", **extra: object) -> dict:
    return {"question": question, "collection": collection, **extra}


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    return body["error"]


class TestKeyStore:
    def test_only_a_hash_is_stored_and_the_secret_must_match(self, tmp_path: Path) -> None:
        store = KeyStore(tmp_path / "keys.sqlite")
        key, record = store.create("staff", name="ops")
        raw = (tmp_path / "keys.sqlite").read_bytes()
        secret = key.split("_", 2)[2]
        assert secret.encode() not in raw and key.encode() not in raw
        assert stat.S_IMODE(os.stat(tmp_path / "keys.sqlite").st_mode) == 0o600
        assert store.verify(key) == record
        forged = key[:-1] + ("A" if key[-1] != "A" else "B")  # right id, wrong secret
        assert store.verify(forged) is None
        assert store.verify("not-a-key") is None

    def test_revoked_key_is_refused(self, tmp_path: Path) -> None:
        store = KeyStore(tmp_path / "keys.sqlite")
        key, record = store.create("staff")
        store.revoke(record.id)
        assert store.verify(key) is None
        assert store.list() == [] and store.list(include_revoked=True)[0].revoked_at is not None

    def test_widget_keys_need_collections_and_origins(self, tmp_path: Path) -> None:
        store = KeyStore(tmp_path / "keys.sqlite")
        with pytest.raises(ConfigError, match="--collection"):
            store.create("widget", origins=[SITE])
        with pytest.raises(ConfigError, match="--origin"):
            store.create("widget", collections=["support"])
        with pytest.raises(DocqaError, match="invalid origin"):
            store.create("widget", collections=["support"], origins=["https://shop.example.com/path"])
        _, record = store.create("widget", collections=["support"], origins=["HTTPS://Shop.Example.com:443/"])
        assert record.origins == (SITE,)

    def test_origin_normalisation(self) -> None:
        assert normalize_origin("http://127.0.0.1:8080") == "http://127.0.0.1:8080"
        assert normalize_origin("http://example.com:80") == "http://example.com"
        with pytest.raises(DocqaError):
            normalize_origin("null")


class TestKeysCli:
    def test_create_list_revoke(self, tmp_path: Path) -> None:
        from docqa.cli.main import app

        runner = CliRunner()
        env = {"DOCQA_DATA_DIR": str(tmp_path / "data")}
        created = runner.invoke(
            app,
            ["keys", "create", "--scope", "widget", "-c", "support", "--origin", SITE, "--json"],
            env=env,
        )
        assert created.exit_code == 0, created.output
        data = json.loads(created.stdout)
        assert data["key"].startswith("dq_") and data["scope"] == "widget" and data["origins"] == [SITE]
        listed = runner.invoke(app, ["keys", "list", "--json"], env=env)
        assert listed.exit_code == 0 and data["key"] not in listed.stdout
        assert [k["id"] for k in json.loads(listed.stdout)] == [data["id"]]
        revoked = runner.invoke(app, ["keys", "revoke", data["id"]], env=env)
        assert revoked.exit_code == 0, revoked.output
        store = KeyStore(tmp_path / "data" / "state" / "keys.sqlite")
        assert store.verify(data["key"]) is None

    def test_widget_key_without_origin_is_an_error_that_says_what_to_do(self, tmp_path: Path) -> None:
        from docqa.cli.main import app

        result = CliRunner().invoke(
            app, ["keys", "create", "--scope", "widget", "-c", "support"], env={"DOCQA_DATA_DIR": str(tmp_path)}
        )
        assert result.exit_code != 0 and isinstance(result.exception, ConfigError)
        assert "--origin" in str(result.exception)


class TestAuthentication:
    def test_every_route_but_the_probes_needs_a_key(self, offline_api: ApiHandle) -> None:
        c = offline_api.client
        assert c.get("/healthz").status_code == 200
        assert c.get("/widget.js").status_code == 200
        for method, path in [
            ("POST", "/v1/ask"),
            ("POST", "/v1/chat"),
            ("POST", "/v1/chat/completions"),
            ("GET", "/v1/models"),
            ("GET", "/v1/collections"),
            ("GET", "/v1/collections/support/documents"),
            ("DELETE", "/v1/collections/support/documents/abc"),
            ("GET", "/v1/jobs/abc"),
            ("GET", "/metrics"),
        ]:
            response = c.request(method, path, json={})
            assert response.status_code == 401, (method, path, response.text)
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert "docqa keys create" in error_of(response)["message"]

    def test_invalid_and_revoked_keys_are_refused(self, offline_api: ApiHandle) -> None:
        key = offline_api.key()
        c = offline_api.client
        assert c.get("/v1/collections", headers=offline_api.auth(key)).status_code == 200
        assert c.get("/v1/collections", headers=offline_api.auth(key[:-2] + "xx")).status_code == 401
        offline_api.state.keys.revoke(key)
        response = c.get("/v1/collections", headers=offline_api.auth(key))
        assert response.status_code == 401 and error_of(response)["type"] == "invalid_key"


class TestWidgetKeys:
    @pytest.fixture
    def widget(self, offline_api: ApiHandle) -> str:
        return offline_api.key("widget", collections=["support"], origins=[SITE])

    def test_answers_from_its_collection_and_origin(self, offline_api: ApiHandle, widget: str) -> None:
        response = offline_api.client.post(
            "/v1/ask", json=ask_body(allow_passages_only=True), headers=offline_api.auth(widget, SITE)
        )
        assert response.status_code == 200, response.text
        top = response.json()["citations"][0]
        # Widget keys see the file name, never the server's path.
        assert top["source"] == "sweep_s3_manual.pdf" and top["page"] == 1

    @pytest.mark.parametrize("collection", ["internal", "does-not-exist"])
    def test_cannot_ask_another_collection(self, offline_api: ApiHandle, widget: str, collection: str) -> None:
        for path, body in [
            ("/v1/ask", ask_body(collection=collection, allow_passages_only=True)),
            ("/v1/chat", ask_body(collection=collection, allow_passages_only=True)),
            ("/v1/chat/completions", {"model": collection, "messages": [{"role": "user", "content": "salary?"}]}),
        ]:
            response = offline_api.client.post(path, json=body, headers=offline_api.auth(widget, SITE))
            # The same 403 whether the collection exists or not: nothing leaks about it.
            assert response.status_code == 403, (path, response.text)
            assert error_of(response)["message"] == f"this key may not use collection '{collection}'"
            assert "61,000" not in response.text

    def test_cannot_list_or_change_documents(self, offline_api: ApiHandle, widget: str) -> None:
        c, headers = offline_api.client, offline_api.auth(widget, SITE)
        assert c.get("/v1/collections/support/documents", headers=headers).status_code == 403
        assert c.get("/v1/collections/internal/documents", headers=headers).status_code == 403
        upload = c.post("/v1/collections/support/documents", headers=headers, files={"files": ("a.md", b"# A\n\nx")})
        assert upload.status_code == 403
        assert c.delete("/v1/collections/support", headers=headers).status_code == 403
        assert c.get("/metrics", headers=headers).status_code == 403
        names = [m["id"] for m in c.get("/v1/models", headers=headers).json()["data"]]
        assert names == ["support"]
        listed = [x["name"] for x in c.get("/v1/collections", headers=headers).json()["collections"]]
        assert listed == ["support"]

    def test_refused_from_an_origin_it_does_not_list(self, offline_api: ApiHandle, widget: str) -> None:
        for origin in [OTHER_SITE, "null", "http://shop.example.com"]:  # http is another origin than https
            response = offline_api.client.post(
                "/v1/ask", json=ask_body(allow_passages_only=True), headers=offline_api.auth(widget, origin)
            )
            assert response.status_code == 403, origin
            assert error_of(response)["type"] == "origin_not_allowed"

    def test_refused_without_an_origin(self, offline_api: ApiHandle, widget: str) -> None:
        response = offline_api.client.post(
            "/v1/ask", json=ask_body(allow_passages_only=True), headers=offline_api.auth(widget)
        )
        assert response.status_code == 403 and error_of(response)["type"] == "origin_required"

    def test_cannot_continue_another_keys_conversation(self, offline_api: ApiHandle, widget: str) -> None:
        staff = offline_api.key()
        state = offline_api.state
        staff_key = state.keys.verify(staff)
        conversation = state.conversations.start(staff_key.id, "support")
        response = offline_api.client.post(
            "/v1/ask",
            json=ask_body(conversation_id=conversation.id, allow_passages_only=True),
            headers=offline_api.auth(widget, SITE),
        )
        assert response.status_code == 404 and error_of(response)["type"] == "conversation_not_found"

    def test_staff_key_bound_to_a_collection_stays_in_it(self, offline_api: ApiHandle) -> None:
        key = offline_api.key("staff", collections=["support"])
        c = offline_api.client
        assert c.get("/v1/collections/internal/documents", headers=offline_api.auth(key)).status_code == 403
        assert c.get("/v1/collections/support/documents", headers=offline_api.auth(key)).status_code == 200


class TestCors:
    ORIGIN = "https://cors-test.example.org"

    def test_preflight_allows_only_origins_that_a_key_lists(self, offline_api: ApiHandle) -> None:
        preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
        c = offline_api.client
        refused = c.options("/v1/chat", headers={"Origin": self.ORIGIN, **preflight})
        assert refused.status_code == 403 and "access-control-allow-origin" not in refused.headers
        offline_api.key("widget", collections=["support"], origins=[self.ORIGIN])
        offline_api.state.keys._origins = None  # skip the two-second origin cache
        allowed = c.options("/v1/chat", headers={"Origin": self.ORIGIN, **preflight})
        assert allowed.status_code == 204
        assert allowed.headers["access-control-allow-origin"] == self.ORIGIN
        assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
        assert allowed.headers["vary"] == "Origin"

    def test_responses_carry_the_origin_never_a_wildcard(self, offline_api: ApiHandle) -> None:
        key = offline_api.key("widget", collections=["support"], origins=[SITE])
        offline_api.state.keys._origins = None
        c = offline_api.client
        ok = c.post("/v1/ask", json=ask_body(allow_passages_only=True), headers=offline_api.auth(key, SITE))
        assert ok.headers["access-control-allow-origin"] == SITE
        # A refusal is readable by the page too, so the widget can show why.
        refused = c.post("/v1/ask", json=ask_body(collection="internal"), headers=offline_api.auth(key, SITE))
        assert refused.status_code == 403 and refused.headers["access-control-allow-origin"] == SITE
        foreign = c.post("/v1/ask", json=ask_body(), headers=offline_api.auth(key, OTHER_SITE))
        assert "access-control-allow-origin" not in foreign.headers


class TestLimits:
    def test_rate_limit_per_key_with_retry_after(self, make_api: Callable[..., ApiHandle], api_data_dir: Path) -> None:
        api = make_api(Settings(data_dir=api_data_dir).with_overrides(api__rate_limit_per_minute=6, api__rate_burst=2))
        first, second = api.key(), api.key()
        statuses = [api.client.get("/v1/collections", headers=api.auth(first)).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        limited = api.client.get("/v1/collections", headers=api.auth(first))
        assert limited.status_code == 429 and 1 <= int(limited.headers["retry-after"]) <= 10
        assert "6 requests per minute" in error_of(limited)["message"]
        assert api.client.get("/v1/collections", headers=api.auth(second)).status_code == 200  # per key

    def test_widget_visitors_have_their_own_buckets_under_a_site_ceiling(
        self, make_api: Callable[..., ApiHandle], api_data_dir: Path
    ) -> None:
        settings = Settings(data_dir=api_data_dir).with_overrides(
            api__rate_limit_per_minute=6, api__rate_burst=2, api__widget_key_rate_per_minute=18  # site burst 3
        )
        api = make_api(settings)
        key = api.key("widget", collections=["support"], origins=[SITE])
        other = TestClient(api.app, client=("203.0.113.9", 40000))

        def status(client: TestClient) -> tuple[int, str]:
            # A cheap request (the collections this key may use) that is rate limited like a question.
            response = client.get("/v1/collections", headers=api.auth(key, SITE))
            return response.status_code, error_of(response)["message"] if response.status_code != 200 else ""

        first = [status(api.client) for _ in range(3)]
        assert [s for s, _ in first] == [200, 200, 429] and "for this visitor" in first[2][1]
        assert status(other)[0] == 200  # a second visitor is not held back by the first
        code, message = status(other)  # but the site's ceiling (3 at once) is now spent
        assert code == 429 and "all visitors of this site" in message and "18 requests per minute" in message

    def test_question_length(self, offline_api: ApiHandle) -> None:
        key = offline_api.key()
        limit = offline_api.state.settings.api.max_question_chars
        response = offline_api.client.post("/v1/ask", json=ask_body("x" * (limit + 1)), headers=offline_api.auth(key))
        assert response.status_code == 422
        error = error_of(response)
        assert error["field"] == "question" and str(limit) in error["message"]

    def test_top_k_ceiling_comes_from_the_settings(
        self, offline_api: ApiHandle, make_api: Callable[..., ApiHandle], api_data_dir: Path
    ) -> None:
        key = offline_api.key()
        response = offline_api.client.post("/v1/ask", json=ask_body(top_k=51), headers=offline_api.auth(key))
        assert response.status_code == 422
        assert error_of(response) == {
            "status": 422,
            "type": "invalid_request",
            "message": "top_k: Input should be less than or equal to 50",
            "field": "top_k",
        }
        narrow = make_api(Settings(data_dir=api_data_dir).with_overrides(api__max_top_k=2))
        response = narrow.client.post("/v1/ask", json=ask_body(top_k=3), headers=narrow.auth(narrow.key()))
        assert response.status_code == 422 and error_of(response)["message"].endswith("less than or equal to 2")

    def test_conversation_length(self, offline_api: ApiHandle) -> None:
        key = offline_api.key()
        turns = offline_api.state.settings.api.max_history_turns
        history = [{"role": r, "content": "hi"} for _ in range(turns) for r in ("user", "assistant")]
        response = offline_api.client.post("/v1/ask", json=ask_body(history=history), headers=offline_api.auth(key))
        assert response.status_code == 422 and f"limit is {turns}" in error_of(response)["message"]
        messages = [*history, {"role": "user", "content": BATTERY}]
        response = offline_api.client.post(
            "/v1/chat/completions", json={"model": "support", "messages": messages}, headers=offline_api.auth(key)
        )
        assert response.status_code == 422 and f"limit is {turns}" in error_of(response)["message"]

    def test_body_size(self, offline_api: ApiHandle) -> None:
        key = offline_api.key()
        body = json.dumps(ask_body(history=[{"role": "user", "content": "x" * 2_000_000}]))
        response = offline_api.client.post(
            "/v1/ask", content=body, headers={**offline_api.auth(key), "Content-Type": "application/json"}
        )
        assert response.status_code == 413 and "limit is" in error_of(response)["message"]

    def test_upload_size(self, make_api: Callable[..., ApiHandle], tmp_path: Path) -> None:
        api = make_api(Settings(data_dir=tmp_path / "data").with_overrides(api__max_upload_mb=0.1))
        key = api.key()
        big = b"# Big\n\n" + b"lorem ipsum " * 20_000  # 240 KB
        response = api.client.post(
            "/v1/collections/kb/documents", headers=api.auth(key), files={"files": ("big.md", big)}
        )
        assert response.status_code == 413 and "0.1 MB" in error_of(response)["message"]
        uploads = tmp_path / "data" / "state" / "uploads"
        assert not uploads.exists() or not any(uploads.rglob("*"))

    def test_unknown_fields_and_bad_types_name_the_field(self, offline_api: ApiHandle) -> None:
        key = offline_api.key()
        response = offline_api.client.post(
            "/v1/ask", json={"question": 3, "collection": "support"}, headers=offline_api.auth(key)
        )
        assert response.status_code == 422 and error_of(response)["field"] == "question"
        response = offline_api.client.post("/v1/ask", json={"collection": "support"}, headers=offline_api.auth(key))
        assert response.status_code == 422 and error_of(response)["field"] == "question"


class TestModelServerDown:
    def test_ask_is_503_with_a_clear_message(self, offline_api: ApiHandle) -> None:
        key = offline_api.key()
        response = offline_api.client.post("/v1/ask", json=ask_body(), headers=offline_api.auth(key))
        assert response.status_code == 503, response.text
        error = error_of(response)
        assert error["type"] == "model_unavailable" and error["message"]
        assert int(response.headers["retry-after"]) > 0

    def test_ask_can_return_the_passages_instead(self, offline_api: ApiHandle) -> None:
        key = offline_api.key()
        response = offline_api.client.post(
            "/v1/ask", json=ask_body(allow_passages_only=True), headers=offline_api.auth(key)
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["answer"] is None and body["model_error"]
        top = body["citations"][0]
        assert Path(top["source"]).name == "sweep_s3_manual.pdf" and top["page"] == 1 and "5200" in top["text"]
        assert Path(top["source"]).is_absolute()  # staff keys see where the document is

    def test_chat_and_completions_are_503_not_a_broken_stream(self, offline_api: ApiHandle) -> None:
        key = offline_api.key()
        chat = offline_api.client.post("/v1/chat", json=ask_body(), headers=offline_api.auth(key))
        assert chat.status_code == 503 and chat.headers["content-type"].startswith("application/json")
        for stream in (False, True):
            response = offline_api.client.post(
                "/v1/chat/completions",
                json={"model": "support", "stream": stream, "messages": [{"role": "user", "content": BATTERY}]},
                headers=offline_api.auth(key),
            )
            assert response.status_code == 503 and error_of(response)["message"]

    def test_chat_stream_with_passages_only(self, offline_api: ApiHandle) -> None:
        key = offline_api.key()
        with offline_api.client.stream(
            "POST", "/v1/chat", json=ask_body(allow_passages_only=True), headers=offline_api.auth(key)
        ) as response:
            assert response.status_code == 200
            from tests.api.helpers import sse_events

            events = list(sse_events(response.iter_lines()))
        assert [e for e, _ in events] == ["meta", "sources", "final"]
        final = json.loads(events[-1][1])
        assert final["answer"] is None and Path(final["citations"][0]["source"]).name == "sweep_s3_manual.pdf"

    def test_unknown_collection_is_404(self, offline_api: ApiHandle) -> None:
        key = offline_api.key()
        response = offline_api.client.post(
            "/v1/ask", json=ask_body(collection="nope", allow_passages_only=True), headers=offline_api.auth(key)
        )
        assert response.status_code == 404 and "docqa ingest" in error_of(response)["message"]

    def test_unknown_model_or_adapter_is_404_naming_the_served_ones(self, offline_api: ApiHandle) -> None:
        key = offline_api.key()
        for path, body in [
            ("/v1/ask", ask_body(model="no-such-adapter", allow_passages_only=True)),
            (
                "/v1/chat/completions",
                {"model": "support:no-such-adapter", "messages": [{"role": "user", "content": "hi"}]},
            ),
        ]:
            response = offline_api.client.post(path, json=body, headers=offline_api.auth(key))
            assert response.status_code == 404, response.text
            error = error_of(response)
            assert error["type"] == "model_not_found" and "docqa-base" in error["message"]

    def test_probes(self, offline_api: ApiHandle) -> None:
        assert offline_api.client.get("/healthz").json()["status"] == "ok"
        ready = offline_api.client.get("/readyz")
        assert ready.status_code == 503
        checks = ready.json()["checks"]
        assert checks["index"]["ok"] is True and checks["model_server"]["ok"] is False


class TestDocuments:
    @pytest.fixture
    def api(self, make_api: Callable[..., ApiHandle], tmp_path: Path) -> ApiHandle:
        return make_api(Settings(data_dir=tmp_path / "data").with_overrides(llm__base_url=closed_llm_url()))

    def upload(self, api: ApiHandle, key: str, files: list[tuple[str, bytes]], **form: str) -> dict:
        response = api.client.post(
            "/v1/collections/kb/documents",
            headers=api.auth(key),
            files=[("files", (name, data)) for name, data in files],
            data=form,
        )
        assert response.status_code == 202, response.text
        body = response.json()
        job = api.state.jobs.wait(body["job_id"], 120)
        assert job is not None and job.finished_at is not None
        return body

    def test_upload_ingest_list_delete(self, api: ApiHandle, tmp_path: Path) -> None:
        key = api.key()
        valves = b"# Valves\n\nCharlie valves must be inspected every 90 days by a technician.\n"
        refunds = b"Refunds are paid within 14 days of a return.\n"
        body = self.upload(api, key, [("../../../escape.md", valves), ("refunds.txt", refunds)])
        assert [f["name"] for f in body["files"]] == ["escape.md", "refunds.txt"]
        uploads = tmp_path / "data" / "state" / "uploads" / "kb"
        assert sorted(p.name for p in uploads.iterdir()) == ["escape.md", "refunds.txt"]
        assert not (tmp_path / "escape.md").exists() and not (tmp_path / "data" / "escape.md").exists()

        job = api.client.get(body["status_url"], headers=api.auth(key)).json()
        assert job["state"] == "done" and job["progress"]["files_done"] == 2 and job["progress"]["chunks"] >= 2
        assert {f["status"] for f in job["files"]} == {"added"}

        docs = api.client.get("/v1/collections/kb/documents", headers=api.auth(key)).json()["documents"]
        assert sorted(d["name"] for d in docs) == ["escape.md", "refunds.txt"] and all(d["uploaded"] for d in docs)
        found = api.client.post(
            "/v1/ask",
            json=ask_body("How often are the valves inspected?", "kb", allow_passages_only=True),
            headers=api.auth(key),
        ).json()
        assert Path(found["citations"][0]["source"]).name == "escape.md"

        target = next(d for d in docs if d["name"] == "escape.md")
        deleted = api.client.delete(f"/v1/collections/kb/documents/{target['id']}", headers=api.auth(key))
        assert deleted.status_code == 200, deleted.text
        docs = api.client.get("/v1/collections/kb/documents", headers=api.auth(key)).json()["documents"]
        assert [d["name"] for d in docs] == ["refunds.txt"]
        assert not (uploads / "escape.md").exists()
        again = api.client.delete(f"/v1/collections/kb/documents/{target['id']}", headers=api.auth(key))
        assert again.status_code == 404

    def test_same_name_is_kept_apart_unless_replaced(self, api: ApiHandle, tmp_path: Path) -> None:
        key = api.key()
        self.upload(api, key, [("notes.md", b"# Notes\n\nThe gate code is 1234.\n")])
        same = self.upload(api, key, [("notes.md", b"# Notes\n\nThe gate code is 1234.\n")])
        assert same["files"][0] == {"name": "notes.md", "original": "notes.md", "stored": "same"}
        other = self.upload(api, key, [("notes.md", b"# Notes\n\nThe gate code is 5678.\n")])
        assert other["files"][0]["name"] == "notes-2.md"
        replaced = self.upload(api, key, [("notes.md", b"# Notes\n\nThe gate code is 9999.\n")], replace="true")
        assert replaced["files"][0] == {"name": "notes.md", "original": "notes.md", "stored": "replaced"}
        job = api.client.get(replaced["status_url"], headers=api.auth(key)).json()
        assert job["files"][0]["status"] == "updated"
        docs = api.client.get("/v1/collections/kb/documents", headers=api.auth(key)).json()["documents"]
        assert sorted(d["name"] for d in docs) == ["notes-2.md", "notes.md"]

    def test_unsupported_type_is_415_and_nothing_is_stored(self, api: ApiHandle, tmp_path: Path) -> None:
        key = api.key()
        response = api.client.post(
            "/v1/collections/kb/documents",
            headers=api.auth(key),
            files=[("files", ("ok.md", b"# ok\n\nfine")), ("files", ("tool.exe", b"MZ\x90\x00"))],
        )
        assert response.status_code == 415 and ".pdf" in error_of(response)["message"]
        assert not (tmp_path / "data" / "state" / "uploads" / "kb").exists()

    def test_failed_file_is_reported_on_the_job(self, api: ApiHandle) -> None:
        key = api.key()
        body = self.upload(api, key, [("empty.md", b"   \n"), ("fine.md", b"# Fine\n\nThe lobby opens at 8 am.\n")])
        job = api.client.get(body["status_url"], headers=api.auth(key)).json()
        assert job["state"] == "failed" and "1 of 2" in job["error"]
        by_name = {f["name"]: f for f in job["files"]}
        assert by_name["empty.md"]["status"] == "failed" and by_name["empty.md"]["error"]
        assert by_name["fine.md"]["status"] == "added"

    def test_invalid_collection_name_and_unknown_job(self, api: ApiHandle) -> None:
        key = api.key()
        bad = api.client.post(
            "/v1/collections/..hidden/documents", headers=api.auth(key), files={"files": ("a.md", b"# A\n\nx")}
        )
        assert bad.status_code == 422 and error_of(bad)["field"] == "collection"
        assert api.client.get("/v1/jobs/0123456789abcdef", headers=api.auth(key)).status_code == 404

    def test_drop_collection(self, api: ApiHandle, tmp_path: Path) -> None:
        key = api.key()
        self.upload(api, key, [("a.md", b"# A\n\nAlpha reactors run at 451 kelvin.\n")])
        assert api.client.delete("/v1/collections/kb", headers=api.auth(key)).status_code == 200
        assert api.client.get("/v1/collections", headers=api.auth(key)).json()["collections"] == []
        assert not (tmp_path / "data" / "state" / "uploads" / "kb").exists()


class TestDocsAndMetrics:
    def test_openapi_lists_the_routes_with_examples(self, offline_api: ApiHandle) -> None:
        spec = offline_api.client.get("/openapi.json").json()
        for path in [
            "/v1/ask",
            "/v1/chat",
            "/v1/chat/completions",
            "/v1/collections/{collection}/documents",
            "/v1/jobs/{job_id}",
            "/healthz",
            "/readyz",
            "/metrics",
        ]:
            assert path in spec["paths"], path
        ask = spec["components"]["schemas"]["AskRequest"]
        assert ask["examples"][0]["collection"] == "support"
        assert any(s.get("scheme") == "bearer" for s in spec["components"]["securitySchemes"].values())
        docs = offline_api.client.get("/docs")
        assert docs.status_code == 200 and "cdn" not in docs.text.lower()  # works on a closed network
        for asset in ("/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"):
            assert asset in docs.text and offline_api.client.get(asset).status_code == 200

    def test_metrics_count_requests_and_refusals(self, offline_api: ApiHandle) -> None:
        key = offline_api.key()
        c = offline_api.client
        c.post("/v1/ask", json=ask_body(allow_passages_only=True), headers=offline_api.auth(key))
        c.get("/v1/collections", headers={"Authorization": "Bearer nope"})
        text = c.get("/metrics", headers=offline_api.auth(key)).text
        assert 'docqa_http_requests_total{method="POST",route="/v1/ask",status="200"} 1.0' in text
        assert 'docqa_auth_failures_total{reason="invalid_key"} 1.0' in text
        assert 'docqa_answers_total{outcome="passages_only"} 1.0' in text
        assert "docqa_retrieval_seconds_count 1.0" in text

    def test_every_response_has_a_request_id(self, offline_api: ApiHandle) -> None:
        assert len(offline_api.client.get("/healthz").headers["x-request-id"]) == 16
        echoed = offline_api.client.get("/healthz", headers={"X-Request-Id": "abc-123"})
        assert echoed.headers["x-request-id"] == "abc-123"
        forged = offline_api.client.get("/healthz", headers={"X-Request-Id": "a\tb<script>"})
        assert forged.headers["x-request-id"] != "a\tb<script>"

    def test_widget_script_is_public_javascript(self, offline_api: ApiHandle) -> None:
        response = offline_api.client.get("/widget.js")
        assert response.headers["content-type"].startswith("application/javascript")
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "attachShadow" in response.text


class TestPureParts:
    """The small pieces with their own rules, without a server."""

    def test_rate_limiter_refills_at_the_steady_rate(self) -> None:
        from docqa.api.ratelimit import RateLimiter

        now = [0.0]
        limiter = RateLimiter(per_minute=60, burst=3, clock=lambda: now[0])
        assert [limiter.take("k") for _ in range(3)] == [0.0, 0.0, 0.0]
        assert limiter.take("k") == pytest.approx(1.0)  # one token a second
        assert limiter.take("other") == 0.0
        now[0] += 1.0
        assert limiter.take("k") == 0.0 and limiter.take("k") > 0

    def test_conversations_expire_are_bounded_and_belong_to_one_key(self) -> None:
        from docqa.api.conversations import ConversationStore

        now = [0.0]
        store = ConversationStore(ttl_s=60, max_conversations=2, clock=lambda: now[0])
        a = store.start("key1", "support")
        store.append(a, "q", "a")
        assert store.get(a.id, "key1", "support").turns == 1
        assert store.get(a.id, "key2", "support") is None and store.get(a.id, "key1", "internal") is None
        b, c = store.start("key1", "support"), store.start("key1", "support")
        assert store.get(a.id, "key1", "support") is None and len(store) == 2  # least recently used went
        now[0] += 61
        assert store.get(b.id, "key1", "support") is None and store.get(c.id, "key1", "support") is None

    def test_a_run_hands_over_one_progress_event_and_counts_the_rest(self) -> None:
        """A wake-up of the event loop per generated piece, for fifty streams, starved every other request:
        the run hands over the first ``progress`` (the model has started) and counts the others."""
        import asyncio

        from docqa.api.streaming import PipelineRun

        def pipeline():
            yield {"event": "sources", "passages": []}
            for _ in range(50):
                yield {"event": "progress"}
            yield {"event": "final", "answer": None}

        async def scenario() -> tuple[list[str], int]:
            run = PipelineRun(pipeline()).start()
            kinds = []
            while (event := await run.next_event(timeout=5)) is not None:
                kinds.append(event["event"])
            return kinds, run.drafted

        assert asyncio.run(scenario()) == (["sources", "progress", "final"], 50)

    def test_runs_reuse_idle_worker_threads(self) -> None:
        """Starting a thread waits for it to run, on the event loop: a finished run's thread takes the next."""
        import asyncio
        import threading

        from docqa.api.streaming import PipelineRun, Workers

        threads: list[int] = []
        workers = Workers("test-answer")

        def pipeline():
            threads.append(threading.get_ident())
            yield {"event": "final", "answer": None}

        async def one() -> None:
            run = PipelineRun(pipeline(), workers).start()
            while await run.next_event(timeout=5) is not None:
                pass
            for _ in range(500):  # the worker goes idle once the generator is closed
                if workers.idle:
                    return
                await asyncio.sleep(0.01)

        async def scenario() -> None:
            for _ in range(3):
                await one()

        asyncio.run(scenario())
        assert len(threads) == 3 and len(set(threads)) == 1

    def test_cancelled_run_closes_the_pipeline_generator(self) -> None:
        import asyncio
        import threading
        import time

        from docqa.api.streaming import PipelineRun

        closed = threading.Event()

        def endless():
            try:
                while True:
                    time.sleep(0.01)
                    yield {"event": "token", "text": "x"}
            finally:
                closed.set()

        async def scenario() -> PipelineRun:
            run = PipelineRun(endless()).start()
            assert (await run.next_event(timeout=5))["event"] == "token"
            run.cancel()
            return run

        run = asyncio.run(scenario())
        assert closed.wait(2), "the generator was not closed after cancel"
        deadline = time.monotonic() + 2
        while run.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not run.is_alive()
