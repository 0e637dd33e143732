"""The state store's seam: what the API, the CLI and the UI keep between requests, in small parts.

One ``StateStore`` per process, chosen by ``state.backend``. The default (``docqa.state.local``) is what a
single machine has always used; ``docqa.state.postgres`` shares every part between API replicas.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from docqa.api.conversations import Conversation
    from docqa.api.jobs import JobRecords
    from docqa.api.keys import ApiKey
    from docqa.auth.audit import AuditEvent
    from docqa.auth.users import User
    from rag.feedback import FeedbackRecord
    from rag.types import Citation


class Keys(Protocol):
    """API keys, stored hashed. ``verify`` reads the store every time: a revocation is seen at once."""

    def create(
        self,
        scope: str,
        *,
        collections: Sequence[str] = (),
        origins: Sequence[str] = (),
        name: str | None = None,
        role: str | None = None,
        user: str | None = None,
    ) -> tuple[str, ApiKey]: ...

    def verify(self, key: str) -> ApiKey | None: ...

    def list(self, include_revoked: bool = False) -> list[ApiKey]: ...

    def revoke(self, key_or_id: str) -> ApiKey: ...

    def known_origins(self) -> frozenset[str]: ...


class Conversations(Protocol):
    """Conversation id -> history, bound to the key and collection that started it; idle ones expire."""

    def start(self, key_id: str, collection: str, history: Sequence[dict[str, str]] = ()) -> Conversation: ...

    def get(self, conversation_id: str, key_id: str, collection: str) -> Conversation | None: ...

    def append(self, conv: Conversation, question: str, answer: str) -> None: ...


class RateLimiter(Protocol):
    """Token buckets: ``take`` spends one and returns 0, or the seconds until one is available."""

    @property
    def enabled(self) -> bool: ...

    def take(self, key: str) -> float: ...

    def wait(self, key: str) -> float:
        """The seconds until ``take`` would pass (0: it would now), spending nothing."""
        ...


class Feedback(Protocol):
    """Staff verdicts on answers (``rag.feedback``), exported as JSONL for fine-tuning."""

    def add(
        self,
        *,
        rating: str,
        question: str,
        answer: str,
        citations: Sequence[Citation | dict[str, Any]] = (),
        comment: str | None = None,
        collection: str | None = None,
        model: str | None = None,
        user: str | None = None,
    ) -> FeedbackRecord: ...

    def update(self, feedback_id: str, *, rating: str | None = None, comment: str | None = None) -> FeedbackRecord: ...

    def delete(self, feedback_id: str) -> bool: ...

    def get(self, feedback_id: str) -> FeedbackRecord | None: ...

    def list(self, *, rating: str | None = None) -> list[FeedbackRecord]: ...

    def export_jsonl(self, target: str | Path | IO[str], *, rating: str | None = None) -> int: ...


class Users(Protocol):
    """Staff accounts for the UI (``docqa.auth.users``): argon2 hashes, roles, lockout after failures."""

    def add(self, name: str, password: str, role: str, collections: Sequence[str] = ()) -> User: ...

    def get(self, name: str) -> User | None: ...

    def list(self) -> list[User]: ...

    def remove(self, name: str) -> None: ...

    def set_role(self, name: str, role: str, collections: Sequence[str] | None = None) -> User: ...

    def set_password(self, name: str, password: str) -> User: ...

    def unlock(self, name: str) -> User: ...

    def authenticate(self, name: str, password: str) -> User: ...


class Audit(Protocol):
    """The append-only audit trail (``docqa.auth.audit``)."""

    def record(
        self,
        actor: str,
        action: str,
        *,
        outcome: str = "ok",
        collection: str | None = None,
        target: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> AuditEvent: ...

    def list(self) -> list[AuditEvent]: ...

    def export_jsonl(self, target: str | Path | IO[str]) -> int: ...


class StateStore(Protocol):
    """The parts. Building one is cheap; a backend connects on first use. ``close`` releases
    connections (the API calls it at shutdown)."""

    keys: Keys
    feedback: Feedback
    jobs: JobRecords
    users: Users
    audit: Audit

    def conversations(self, ttl_s: float) -> Conversations: ...

    def rate_limiter(self, name: str, per_minute: float, burst: int) -> RateLimiter:
        """The limiter called ``name``: two names keep their buckets apart when they share keys, and the same
        name asked for again counts in the same buckets."""
        ...

    def close(self) -> None: ...
