"""Where the state lives between requests: keys, jobs, conversations, rate limits, feedback, staff accounts
and the audit trail.

``open_state(settings)`` picks the backend named by ``state.backend``: ``"sqlite"`` (the default: SQLite
files and this process's memory, for one API process) or ``"postgres"`` (one database shared by every API
replica). The parts' protocols are in ``docqa.state.protocol``.
"""

from __future__ import annotations

from docqa.state.protocol import Audit, Conversations, Feedback, Keys, RateLimiter, StateStore, Users
from rag.settings import Settings

__all__ = ["Audit", "Conversations", "Feedback", "Keys", "RateLimiter", "StateStore", "Users", "open_state"]


def open_state(settings: Settings) -> StateStore:
    """The configured store; cheap (a database backend connects on first use). Close it when done."""
    if settings.state.backend == "postgres":
        from docqa.state.postgres import PostgresState

        return PostgresState(settings)
    from docqa.state.local import LocalState

    return LocalState(settings)
