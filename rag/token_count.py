"""Counting the chat model's tokens, so that a prompt fits its context window.

The tokenizer loads on the first count (a process that never answers never loads it): from the prepared
checkpoint, else from the directory the model server says it loaded the model from, else, for a remote
endpoint whose tokenizer is not on this machine, an estimate of ``llm.chars_per_token`` characters a token.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from rag.errors import DocqaError
from rag.generation import Generator, chat_token_counter
from rag.settings import Settings

log = logging.getLogger(__name__)


class ChatTokenCounter:
    """``counter(text) -> int``: the chat model's token count of ``text`` (no special tokens)."""

    def __init__(self, settings: Settings, generator: Generator) -> None:
        self.settings = settings
        self.generator = generator
        self._count: Callable[[str], int] | None = None
        self._lock = threading.Lock()

    def __call__(self, text: str) -> int:
        if self._count is None:
            with self._lock:
                if self._count is None:
                    self._count = self._load()
        return self._count(text)

    def _load(self) -> Callable[[str], int]:
        served_root = getattr(self.generator, "served_root", None)
        try:
            try:
                return chat_token_counter(self.settings)
            except DocqaError:
                # Not prepared here: the server may have loaded it from a directory this machine reads.
                return chat_token_counter(self.settings, served_root() if served_root else None)
        except DocqaError as exc:
            per_token = self.settings.llm.chars_per_token
            log.warning("chat tokenizer unavailable (%s); estimating 1 token per %s characters", exc, per_token)
            return lambda text: int(len(text) / per_token) + 1
