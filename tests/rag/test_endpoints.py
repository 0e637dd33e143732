"""One generator over several model endpoints (``llm.base_urls``), against real HTTP servers on 127.0.0.1
that speak vLLM's OpenAI API (tests/fake_model_server.py) and ports where nothing listens: requests are
spread, a dead endpoint is skipped within the request (blocking and streaming) and tried again after the
back-off, and a stream that fails after its first token is not continued elsewhere."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from pydantic import ValidationError

from rag.errors import ModelServerError
from rag.generation import OpenAIGenerator
from rag.settings import LLMSettings, Settings
from tests.fake_model_server import base_url, fake_model_server
from tests.helpers import free_port

ASK = [{"role": "user", "content": "hi"}]


class Clock:
    """A clock the test moves: the back-off passes without sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def generator(urls: list[str], clock: Clock | None = None, retry_s: float = 30.0) -> OpenAIGenerator:
    llm = LLMSettings(base_urls=urls, endpoint_retry_s=retry_s, connect_timeout_s=2.0, timeout_s=30.0)
    return OpenAIGenerator(llm, "docqa-base", clock=clock or Clock())


def dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}/v1"


@pytest.fixture
def servers() -> Iterator[list]:
    with ExitStack() as stack:
        yield [stack.enter_context(fake_model_server([f"answer {name}"])) for name in "abc"]


class TestSettings:
    def test_base_urls_win_over_base_url_and_default_to_it(self) -> None:
        assert LLMSettings().endpoints == ["http://127.0.0.1:8000/v1"]
        llm = LLMSettings(base_url="http://one:8000/v1", base_urls=["http://a:8000/v1/", "http://b:8000/v1"])
        assert llm.endpoints == ["http://a:8000/v1", "http://b:8000/v1"]

    def test_environment_takes_a_json_list_or_commas(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("DOCQA_LLM_BASE_URLS", '["http://a:8000/v1", "http://b:8001/v1"]')
        assert Settings().llm.endpoints == ["http://a:8000/v1", "http://b:8001/v1"]
        monkeypatch.setenv("DOCQA_LLM_BASE_URLS", "http://a:8000/v1, http://c:8002/v1")
        assert Settings().llm.endpoints == ["http://a:8000/v1", "http://c:8002/v1"]
        monkeypatch.setenv("DOCQA_LLM_BASE_URLS", '["http://a:8000/v1",')
        with pytest.raises(ValidationError, match=r"llm\.base_urls \(DOCQA_LLM_BASE_URLS\) is not a JSON list"):
            Settings()

    @pytest.mark.parametrize("bad", ["127.0.0.1:8000/v1", "ftp://a/v1", "http:///v1", "http://a:99999/v1"])
    def test_a_malformed_url_is_refused_naming_the_field(self, bad: str) -> None:
        with pytest.raises(ValidationError) as info:
            LLMSettings(base_urls=["http://fine:8000/v1", bad])
        assert "llm.base_urls[1]" in str(info.value) and "http://HOST:PORT/v1" in str(info.value)
        with pytest.raises(ValidationError, match=r"llm\.base_url \(DOCQA_LLM_BASE_URL\)"):
            LLMSettings(base_url=bad)


class TestSpreading:
    def test_idle_endpoints_take_turns(self, servers: list) -> None:
        gen = generator([base_url(s) for s in servers])
        answers = [gen.chat(ASK) for _ in range(6)]
        assert answers == ["answer a", "answer b", "answer c"] * 2
        assert [len(s.requests) for s in servers] == [2, 2, 2]

    def test_a_busy_endpoint_is_passed_over(self, servers: list) -> None:
        gen = generator([base_url(s) for s in servers])
        stream = gen.stream(ASK)
        assert next(stream) == "answer a"  # a stream holds a
        try:
            assert [gen.chat(ASK) for _ in range(3)] == ["answer b", "answer c", "answer b"]
        finally:
            stream.close()
        assert sorted(gen.chat(ASK) for _ in range(3)) == ["answer a", "answer b", "answer c"]  # a is free again


class TestFailover:
    def test_a_dead_endpoint_is_skipped_within_the_request(self, servers: list) -> None:
        dead = dead_url()
        gen = generator([dead, base_url(servers[0])])
        assert gen.chat(ASK) == "answer a"
        assert "".join(gen.stream(ASK)) == "answer a"
        assert gen.models() == ["docqa-base"]
        gen.check()
        assert len(servers[0].requests) == 2

    def test_a_5xx_before_the_first_token_fails_over(self) -> None:
        with fake_model_server(["broken"], status=503) as sick, fake_model_server(["fine"]) as well:
            gen = generator([base_url(sick), base_url(well)])
            assert "".join(gen.stream(ASK)) == "fine"
            assert len(sick.requests) == 1 and len(well.requests) == 1
            assert gen.chat(ASK) == "fine"  # sick is passed over now
            assert len(sick.requests) == 1 and len(well.requests) == 2

    def test_a_stream_dropped_before_its_first_token_fails_over(self) -> None:
        with fake_model_server([], drop=True) as mute, fake_model_server(["spoken"]) as well:
            gen = generator([base_url(mute), base_url(well)])
            assert list(gen.stream(ASK)) == ["spoken"]
            assert len(mute.requests) == 1

    def test_a_stream_dropped_after_its_first_token_is_not_retried_elsewhere(self) -> None:
        with fake_model_server(["half ", "an "], drop=True) as flaky, fake_model_server(["whole"]) as well:
            gen = generator([base_url(flaky), base_url(well)])
            received: list[str] = []
            with pytest.raises(ModelServerError) as info:
                for piece in gen.stream(ASK):
                    received.append(piece)
            assert received == ["half ", "an "]
            assert base_url(flaky) in str(info.value) and "in the middle of an answer" in str(info.value)
            assert well.requests == []

    def test_a_4xx_is_the_request_s_fault_and_does_not_fail_over(self) -> None:
        with fake_model_server(["x"], status=400) as strict, fake_model_server(["y"]) as well:
            gen = generator([base_url(strict), base_url(well)])
            with pytest.raises(Exception, match="rejected the request"):
                gen.chat(ASK)
            assert well.requests == []

    def test_every_endpoint_dead_names_each(self) -> None:
        urls = [dead_url(), dead_url()]
        gen = generator(urls)
        for call in (lambda: gen.chat(ASK), lambda: list(gen.stream(ASK)), gen.check):
            with pytest.raises(ModelServerError) as info:
                call()
            message = str(info.value)
            assert all(url in message for url in urls) and "DOCQA_LLM_BASE_URLS" in message

    def test_a_dead_endpoint_is_tried_again_after_the_back_off(self) -> None:
        port = free_port()
        clock = Clock()
        with fake_model_server(["from b"]) as b:
            gen = generator([f"http://127.0.0.1:{port}/v1", base_url(b)], clock, retry_s=30.0)
            assert gen.chat(ASK) == "from b"  # a refused: marked down
            with fake_model_server(["from a"], port=port) as a:  # a is back, but still passed over
                assert [gen.chat(ASK) for _ in range(4)] == ["from b"] * 4
                assert a.requests == []
                clock.now += 31.0
                assert sorted(gen.chat(ASK) for _ in range(2)) == ["from a", "from b"]  # back in the rotation
                assert len(a.requests) == 1

    def test_one_endpoint_keeps_today_s_errors(self) -> None:
        url = dead_url()
        gen = OpenAIGenerator(LLMSettings(base_url=url, max_retries=0), "docqa-base")
        with pytest.raises(ModelServerError) as info:
            gen.chat(ASK)
        assert str(info.value).startswith(f"the model server at {url} is unreachable")
        assert "docqa model serve" in str(info.value)
        with fake_model_server(["half"], drop=True) as flaky:
            gen = OpenAIGenerator(LLMSettings(base_url=base_url(flaky)), "docqa-base")
            with pytest.raises(ModelServerError, match="in the middle of an answer"):
                list(gen.stream(ASK))
