"""The generators behind the ``Generator`` protocol: the OpenAI-compatible client (against closed ports, no
server), the stop-string trimmer, and the in-process transformers backend (which uses the converted
checkpoint, converted once per cache)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from rag.adapters import register_adapter
from rag.errors import ModelServerError
from rag.generation import OpenAIGenerator, TransformersGenerator, _other_starts, _StopTrimmer, build_generator
from rag.settings import Settings
from tests.helpers import free_port, make_random_lora


class TestOpenAIGenerator:
    def test_closed_port_fails_fast_and_names_the_url(self, settings: Settings) -> None:
        url = f"http://127.0.0.1:{free_port()}/v1"
        gen = OpenAIGenerator(settings.llm.model_copy(update={"base_url": url}), "docqa-base")
        started = time.monotonic()
        with pytest.raises(ModelServerError) as info:
            gen.check()
        assert time.monotonic() - started < 5
        assert url in str(info.value) and "docqa model serve" in str(info.value)
        started = time.monotonic()
        with pytest.raises(ModelServerError):
            gen.chat([{"role": "user", "content": "hi"}])  # with retries: still seconds, not minutes
        assert time.monotonic() - started < 10

    def test_api_key_is_read_late_from_the_named_variable(
        self, settings: Settings, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        llm = settings.llm.model_copy(update={"api_key_env": "DOCQA_TEST_KEY"})
        gen = OpenAIGenerator(llm, "docqa-base")
        monkeypatch.setenv("DOCQA_TEST_KEY", "sk-test")
        assert gen._get_client().api_key == "sk-test"
        assert "sk-test" not in repr(llm)
        assert OpenAIGenerator(settings.llm, "docqa-base")._get_client().api_key in (
            "EMPTY",
            os.environ.get(settings.llm.api_key_env),
        )

    def test_backend_choice(self, settings: Settings) -> None:
        assert isinstance(build_generator(settings), OpenAIGenerator)
        gen = build_generator(settings.with_overrides(llm__backend="transformers"))
        assert isinstance(gen, TransformersGenerator) and gen._model is None  # nothing loaded yet
        assert build_generator(settings.with_overrides(llm__model="custom")).model_name == "custom"


def test_stop_trimmer() -> None:
    trimmer = _StopTrimmer(["</s>", "\nQ:"])
    pieces = ["Hello", " wor", "ld\n", "Q", ": again"]
    emitted, done = [], False
    for piece in pieces:
        text, done = trimmer.feed(piece)
        emitted.append(text)
        if done:
            break
    assert "".join(emitted) == "Hello world" and done
    assert _StopTrimmer([]).feed("x") == ("x", False)


def test_other_starts_skip_the_greedy_token_and_its_variants() -> None:
    ranked = ["John", " john", "Bain", "", "\ufffd", "New", "bain", "The"]
    assert _other_starts("John", ranked, 3) == ["Bain", "New", "The"]
    assert _other_starts("John", ranked, 1) == ["Bain"]
    assert _other_starts("The", ["The"], 3) == []


@pytest.mark.slow
class TestTransformersGenerator:
    @pytest.fixture(scope="class")
    def generator(
        self, prepared_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
    ) -> TransformersGenerator:
        data = tmp_path_factory.mktemp("tg")
        s = Settings(
            data_dir=data, model={"source": str(prepared_model_dir)}, llm={"backend": "transformers"}
        )
        register_adapter(s, "test-lora", make_random_lora(prepared_model_dir, data / "lora"))
        gen = build_generator(s)
        assert isinstance(gen, TransformersGenerator)
        return gen

    def test_warm_up_twice_loads_once(self, generator: TransformersGenerator) -> None:
        generator.warm_up()
        model = generator._model
        generator.warm_up()
        assert generator._model is model

    def test_chat_and_stream(self, generator: TransformersGenerator) -> None:
        messages = [{"role": "user", "content": "What is the capital of France?"}]
        answer = generator.chat(messages, max_tokens=12)
        assert answer.strip()
        pieces = list(generator.stream(messages, max_tokens=12))
        assert len(pieces) >= 2 and "".join(pieces) == answer  # greedy: the same text both ways
        assert generator.check() is None

    def test_adapter_changes_the_answer_and_base_comes_back(self, generator: TransformersGenerator) -> None:
        messages = [{"role": "user", "content": "Name a colour."}]
        base = generator.chat(messages, max_tokens=8)
        tuned = generator.chat(messages, model="test-lora", max_tokens=8)
        assert tuned != base
        assert generator.chat(messages, max_tokens=8) == base
        assert generator.models() == ["docqa-base", "test-lora"]
        with pytest.raises(ModelServerError, match="not served"):
            generator.chat(messages, model="ghost", max_tokens=4)

    def test_alternatives_branch_from_other_first_tokens(self, generator: TransformersGenerator) -> None:
        messages = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
        greedy = generator.chat(messages, max_tokens=8)
        others = generator.alternatives(messages, max_tokens=8, k=2)
        assert len(set(others)) == 2 and all(o.strip() for o in others) and greedy not in others
        assert any(len(o.split()) > 1 for o in others)  # continued, not the first token alone

    def test_stop_strings_and_early_close(self, generator: TransformersGenerator) -> None:
        messages = [{"role": "user", "content": "Count from 1 to 20, separated by commas."}]
        full = generator.chat(messages, max_tokens=30)
        if "," in full:
            assert generator.chat(messages, max_tokens=30, stop=[","]) == full.split(",")[0]
        stream = generator.stream(messages, max_tokens=200)
        next(stream)
        stream.close()  # cancels generation; the lock is free again
        assert generator.chat(messages, max_tokens=2)
