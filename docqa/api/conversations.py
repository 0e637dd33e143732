"""Conversation id -> history, so follow-up questions work over HTTP without the client resending turns.

Each conversation is bound to the key and the collection that started it: another key (or the same key
on another collection) cannot read or continue it. Idle conversations expire after
``api.conversation_ttl_s``; the store holds at most ``max_conversations`` (least recently used go first).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

DEFAULT_MAX_CONVERSATIONS = 10_000  # memory bound: about 20 turns of a few KB each


@dataclass
class Conversation:
    id: str
    key_id: str
    collection: str
    history: list[dict[str, str]] = field(default_factory=list)
    last_used: float = 0.0

    @property
    def turns(self) -> int:
        return sum(1 for t in self.history if t["role"] == "user")


class ConversationStore:
    """In this process's memory (the default state store): fast, and gone when the process stops."""

    def __init__(
        self,
        ttl_s: float,
        max_conversations: int = DEFAULT_MAX_CONVERSATIONS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s = ttl_s
        self.max_conversations = max_conversations
        self.clock = clock
        self._items: OrderedDict[str, Conversation] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def _expire(self, now: float) -> None:
        while self._items:
            oldest = next(iter(self._items.values()))
            if now - oldest.last_used <= self.ttl_s and len(self._items) <= self.max_conversations:
                break
            self._items.popitem(last=False)

    def start(self, key_id: str, collection: str, history: Sequence[dict[str, str]] = ()) -> Conversation:
        """A new conversation, optionally with the turns a client sent along with its first question."""
        now = self.clock()
        conv = Conversation(secrets.token_urlsafe(16), key_id, collection, [dict(t) for t in history], now)
        with self._lock:
            self._items[conv.id] = conv
            self._expire(now)
        return conv

    def get(self, conversation_id: str, key_id: str, collection: str) -> Conversation | None:
        """The conversation if it exists, is alive and belongs to this key and collection; else None."""
        now = self.clock()
        with self._lock:
            self._expire(now)
            conv = self._items.get(conversation_id)
            if conv is None or conv.key_id != key_id or conv.collection != collection:
                return None
            conv.last_used = now
            self._items.move_to_end(conversation_id)
            return conv

    def append(self, conv: Conversation, question: str, answer: str) -> None:
        with self._lock:
            conv.history.extend([{"role": "user", "content": question}, {"role": "assistant", "content": answer}])
            conv.last_used = self.clock()
            if conv.id in self._items:
                self._items.move_to_end(conv.id)
            else:  # expired while it was answering: keep it, the client already holds the id
                self._items[conv.id] = conv
