"""The API probed as an attacker and a new user would probe it, against the real app and index: invalid
Unicode in every field, forged X-Forwarded-For, what error bodies disclose to whom, a model server
that drops the connection mid-answer, and who may read the metrics."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from docqa.api.errors import error_body
from rag.errors import ModelServerError
from rag.settings import Settings
from tests.api.helpers import ApiHandle, sse_events
from tests.fake_model_server import base_url, fake_model_server
from tests.helpers import closed_llm_url

SITE = "https://shop.example.com"
BATTERY = "What is the battery capacity of the Sweep S3?"
SURROGATE = "\ud800"  # a lone UTF-16 surrogate: what the JSON escape "\ud800" decodes to


def error_of(response: httpx.Response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    return body["error"]


def post_json(client, path: str, body: object, headers: dict[str, str]) -> httpx.Response:
    """Send ``body`` as ASCII JSON, so a lone surrogate travels as its escape (as an attacker sends it)."""
    return client.post(path, content=json.dumps(body), headers={**headers, "Content-Type": "application/json"})


def ask(**extra: object) -> dict:
    return {"question": BATTERY, "collection": "support", **extra}


def completion(**extra: object) -> dict:
    return {"model": "support", "messages": [{"role": "user", "content": BATTERY}], **extra}


SURROGATE_CASES = [
    ("/v1/ask", ask(question=f"battery {SURROGATE}"), "question"),
    ("/v1/ask", ask(collection=f"support{SURROGATE}"), "collection"),
    ("/v1/ask", ask(model=f"docqa-base{SURROGATE}"), "model"),
    ("/v1/ask", ask(conversation_id=SURROGATE), "conversation_id"),
    ("/v1/ask", ask(history=[{"role": "user", "content": f"hi {SURROGATE}"}]), "history.0.content"),
    ("/v1/ask", {**ask(), SURROGATE: 1}, SURROGATE),  # a key: the message naming it must still render
    ("/v1/chat", ask(collection=SURROGATE), "collection"),
    ("/v1/chat", ask(history=[{"role": "assistant", "content": SURROGATE}]), "history.0.content"),
    ("/v1/chat/completions", completion(model=f"support{SURROGATE}"), "model"),
    ("/v1/chat/completions", completion(messages=[{"role": "user", "content": SURROGATE}]), "messages.0.content"),
    (
        "/v1/chat/completions",
        completion(messages=[{"role": "user", "content": [{"type": "text", "text": SURROGATE}]}]),
        "messages.0.content.0.text",
    ),
    ("/v1/chat/completions", completion(user=SURROGATE), "user"),
    ("/v1/chat/completions", completion(stop=[SURROGATE]), "stop.0"),  # an ignored extra is checked too
]


class TestInvalidText:
    @pytest.fixture
    def widget(self, offline_api: ApiHandle) -> dict[str, str]:
        return offline_api.auth(offline_api.key("widget", collections=["support"], origins=[SITE]), SITE)

    @pytest.mark.parametrize(("path", "body", "field"), SURROGATE_CASES)
    def test_lone_surrogate_is_a_422_naming_the_field(
        self, offline_api: ApiHandle, widget: dict[str, str], path: str, body: dict, field: str
    ) -> None:
        response = post_json(offline_api.client, path, body, widget)
        assert response.status_code == 422, response.text
        error = error_of(response)
        assert error["field"] == field.encode("utf-8", "backslashreplace").decode()
        assert "surrogate" in error["message"] and error["message"].startswith(error["field"])

    def test_keep_alive_connection_survives(self, serve_api: Callable[..., ApiHandle], api_data_dir: Path) -> None:
        api = serve_api(Settings(data_dir=api_data_dir).with_overrides(llm__base_url=closed_llm_url()))
        key = api.key("widget", collections=["support"], origins=[SITE])
        for path, body, _ in SURROGATE_CASES:
            response = post_json(api.client, path, body, api.auth(key, SITE))
            assert response.status_code == 422 and response.headers.get("connection") != "close", response.text
        assert api.client.get("/healthz").status_code == 200

    def test_an_error_message_echoing_a_surrogate_renders(self) -> None:
        from fastapi.responses import JSONResponse

        body = error_body(422, "invalid_request", f"invalid collection name '{SURROGATE}'", "collection")
        assert "\\ud800" in json.loads(JSONResponse(body).body)["error"]["message"]

    def test_invalid_utf8_body_is_a_422(self, offline_api: ApiHandle) -> None:
        raw = b'{"question": "caf\xe9 \xff", "collection": "support"}'
        headers = {**offline_api.auth(offline_api.key()), "Content-Type": "application/json"}
        for path in ("/v1/ask", "/v1/chat", "/v1/chat/completions"):
            response = offline_api.client.post(path, content=raw, headers=headers)
            assert response.status_code == 422, response.text
            error = error_of(response)
            assert error["field"] == "body" and "UTF-8" in error["message"] and error["type"] == "invalid_request"


class TestTrustedProxies:
    def statuses(self, api: ApiHandle, count: int) -> list[int]:
        """A visitor behind a local pass-through proxy, naming a new client address on every request."""
        key = api.key("widget", collections=["support"], origins=[SITE])
        return [
            api.client.get(
                "/v1/collections", headers={**api.auth(key, SITE), "X-Forwarded-For": f"198.51.100.{i}"}
            ).status_code
            for i in range(count)
        ]

    def test_forwarded_for_is_ignored_by_default(
        self, serve_api: Callable[..., ApiHandle], api_data_dir: Path
    ) -> None:
        settings = Settings(data_dir=api_data_dir).with_overrides(api__rate_limit_per_minute=6, api__rate_burst=2)
        assert self.statuses(serve_api(settings), 4) == [200, 200, 429, 429]

    def test_a_trusted_proxy_names_the_visitor(self, serve_api: Callable[..., ApiHandle], api_data_dir: Path) -> None:
        settings = Settings(data_dir=api_data_dir).with_overrides(
            api__rate_limit_per_minute=6, api__rate_burst=2, api__trusted_proxies=["127.0.0.1"]
        )
        assert self.statuses(serve_api(settings), 4) == [200, 200, 200, 200]


class TestDisclosure:
    """The model server's address and the operator's commands are for staff keys and the log."""

    INTERNAL = ("127.0.0.1:", "docqa model serve", "make serve-model")

    def leaks(self, text: str) -> list[str]:
        return [s for s in self.INTERNAL if s in text]

    def test_503_bodies(self, offline_api: ApiHandle, caplog: pytest.LogCaptureFixture) -> None:
        c = offline_api.client
        widget = offline_api.auth(offline_api.key("widget", collections=["support"], origins=[SITE]), SITE)
        staff = offline_api.auth(offline_api.key())
        for path, body in [("/v1/ask", ask()), ("/v1/chat", ask()), ("/v1/chat/completions", completion())]:
            public = c.post(path, json=body, headers=widget)
            assert public.status_code == 503 and error_of(public)["type"] == "model_unavailable"
            assert self.leaks(public.text) == [] and "try again" in error_of(public)["message"], public.text
            detailed = c.post(path, json=body, headers=staff)
            assert detailed.status_code == 503 and self.leaks(detailed.text), detailed.text
        assert "docqa model serve" in caplog.text  # the operator still finds the detail in the log

    def test_passages_only_model_error(self, offline_api: ApiHandle) -> None:
        widget = offline_api.auth(offline_api.key("widget", collections=["support"], origins=[SITE]), SITE)
        body = offline_api.client.post("/v1/ask", json=ask(allow_passages_only=True), headers=widget).json()
        assert body["answer"] is None and body["model_error"] and self.leaks(body["model_error"]) == []
        with offline_api.client.stream("POST", "/v1/chat", json=ask(allow_passages_only=True), headers=widget) as r:
            final = json.loads(list(sse_events(r.iter_lines()))[-1][1])
        assert final["answer"] is None and final["model_error"] and self.leaks(final["model_error"]) == []

    def test_readyz(self, offline_api: ApiHandle) -> None:
        public = offline_api.client.get("/readyz")
        assert public.status_code == 503 and public.json()["checks"]["model_server"]["ok"] is False
        assert self.leaks(public.text) == []
        staff = offline_api.client.get("/readyz", headers=offline_api.auth(offline_api.key()))
        assert self.leaks(staff.json()["checks"]["model_server"]["error"])


class TestMetricsScope:
    def test_only_staff_keys_for_all_collections(self, offline_api: ApiHandle) -> None:
        c = offline_api.client
        limited = offline_api.key("staff", collections=["support"])
        response = c.get("/metrics", headers=offline_api.auth(limited))
        assert response.status_code == 403 and "all collections" in error_of(response)["message"]
        widget = offline_api.key("widget", collections=["support"], origins=[SITE])
        assert c.get("/metrics", headers=offline_api.auth(widget, SITE)).status_code == 403
        response = c.get("/metrics", headers=offline_api.auth(offline_api.key()))
        assert response.status_code == 200 and "docqa_http_requests" in response.text


class TestModelDropsMidAnswer:
    PIECES = ("The Sweep S3 ", "battery holds ")

    def test_generator_says_what_happened(self) -> None:
        from rag.generation import OpenAIGenerator
        from rag.settings import LLMSettings

        with fake_model_server(self.PIECES, drop=True) as server:
            generator = OpenAIGenerator(LLMSettings(base_url=base_url(server)), "docqa-base")
            received: list[str] = []
            with pytest.raises(ModelServerError) as caught:
                for piece in generator.stream([{"role": "user", "content": "hi"}]):
                    received.append(piece)
        assert received == list(self.PIECES)
        message = str(caught.value)
        assert "closed the connection in the middle of an answer" in message
        assert "unreachable" not in message and "Start it with" not in message, message

    def test_chat_falls_back_to_passages(self, make_api: Callable[..., ApiHandle], api_data_dir: Path) -> None:
        # Tokens must reach the client before the drop: the answer mode that streams them, where there is one.
        streamed = {"answer__mode": "generate"}
        with fake_model_server(self.PIECES, drop=True) as server:
            settings = Settings(data_dir=api_data_dir).with_overrides(llm__base_url=base_url(server), **streamed)
            api = make_api(settings)
            headers = api.auth(api.key())
            with api.client.stream("POST", "/v1/chat", json=ask(allow_passages_only=True), headers=headers) as r:
                assert r.status_code == 200
                events = list(sse_events(r.iter_lines()))
            with api.client.stream("POST", "/v1/chat", json=ask(), headers=headers) as r:
                without = list(sse_events(r.iter_lines()))
        kinds = [e for e, _ in events]
        assert kinds[:2] == ["meta", "sources"] and "token" in kinds and kinds[-1] == "final", kinds
        final = json.loads(events[-1][1])
        assert final["answer"] is None and final["citations"], final
        assert Path(final["citations"][0]["source"]).name == "sweep_s3_manual.pdf"
        assert "in the middle of an answer" in final["model_error"]
        # Without allow_passages_only the stream ends with an error event that says what happened.
        assert without[-1][0] == "error" and "in the middle of an answer" in without[-1][1]


class TestTokenizerFromTheServedModel:
    def test_prompts_are_sized_with_the_served_models_tokenizer(
        self, prepared_model_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """DOCQA_DATA_DIR elsewhere (no prepared checkpoint there): the tokenizer comes from where the
        model server says it loaded the model, and nothing warns."""
        from transformers import AutoTokenizer

        from docqa.services import Services

        text = "The Sweep S3 battery holds 5200 mAh; the first full charge takes 4 hours."
        expected = len(AutoTokenizer.from_pretrained(prepared_model_dir).encode(text, add_special_tokens=False))
        with fake_model_server(["x"], root=str(prepared_model_dir)) as server:
            settings = Settings(data_dir=tmp_path / "elsewhere").with_overrides(llm__base_url=base_url(server))
            with caplog.at_level("WARNING", logger="rag.token_count"):
                count = Services(settings).pipeline.count_tokens(text)
        assert count == expected and "tokenizer unavailable" not in caplog.text
        with fake_model_server(["x"]) as server:  # a server that does not say: the estimate, with a warning
            settings = Settings(data_dir=tmp_path / "other").with_overrides(llm__base_url=base_url(server))
            with caplog.at_level("WARNING", logger="rag.token_count"):
                Services(settings).pipeline.count_tokens(text)
        assert "tokenizer unavailable" in caplog.text
