"""The numbers that used to be constants in the code are settings now, with the values they had."""

from __future__ import annotations

import pytest

from rag.settings import Settings, load_settings


def test_former_constants_keep_their_values() -> None:
    s = Settings()
    assert (s.answer.history_messages, s.answer.condense_max_tokens) == (6, 64)
    assert (s.llm.chars_per_token, s.llm.prompt_overhead_tokens, s.llm.min_passage_tokens) == (3.5, 160, 128)
    assert s.retrieval.pool_factor == 3
    assert (s.api.max_top_k, s.ui.max_top_k) == (50, 20)


def test_they_are_set_like_every_other_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCQA_LLM_CHARS_PER_TOKEN", "4")
    monkeypatch.setenv("DOCQA_ANSWER_HISTORY_MESSAGES", "2")
    monkeypatch.setenv("DOCQA_RETRIEVAL_POOL_FACTOR", "5")
    s = load_settings()
    assert (s.llm.chars_per_token, s.answer.history_messages, s.retrieval.pool_factor) == (4.0, 2, 5)
    described = Settings.model_fields["llm"].annotation.model_fields["chars_per_token"].description
    assert described and "tokenizer" in described
