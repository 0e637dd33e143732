"""The default state store, as docqa has always kept its state on one machine: keys, feedback, users and the audit
trail in SQLite files under ``state_dir``, conversations, rate-limit buckets and job records in this process's memory.
Fast and dependency-free; right for one API process, wrong for several (each would have its own)."""

from __future__ import annotations

from docqa.api.conversations import ConversationStore
from docqa.api.jobs import MemoryJobRecords
from docqa.api.keys import KeyStore
from docqa.api.ratelimit import RateLimiter
from docqa.auth.audit import AuditLog
from docqa.auth.users import UserStore
from rag.feedback import FeedbackStore
from rag.settings import Settings


class LocalState:
    def __init__(self, settings: Settings) -> None:
        self.keys = KeyStore.for_settings(settings)
        self.feedback = FeedbackStore.for_settings(settings)
        self.jobs = MemoryJobRecords()
        self.users = UserStore.for_settings(settings)
        self.audit = AuditLog.for_settings(settings)
        self._limiters: dict[tuple[str, float, int], RateLimiter] = {}

    def conversations(self, ttl_s: float) -> ConversationStore:
        return ConversationStore(ttl_s)

    def rate_limiter(self, name: str, per_minute: float, burst: int) -> RateLimiter:
        # The same buckets for the same name, as in a shared database: the UI asks for its sign-in limiter
        # on every attempt. (Only the API's limiters and that one exist, so the dict stays small.)
        return self._limiters.setdefault((name, per_minute, burst), RateLimiter(per_minute, burst))

    def close(self) -> None:
        pass
