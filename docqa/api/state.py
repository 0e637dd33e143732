"""What one app instance holds: the services and the API's own state (keys, limits, conversations, jobs)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from docqa.api.conversations import ConversationStore
from docqa.api.jobs import JobManager
from docqa.api.keys import KeyStore
from docqa.api.metrics import ApiMetrics
from docqa.api.ratelimit import RateLimiter
from docqa.services import Services
from rag.settings import Settings


@dataclass
class ApiState:
    settings: Settings
    services: Services
    keys: KeyStore
    limiter: RateLimiter  # per staff key, per widget visitor
    widget_limiter: RateLimiter  # per widget key, all its visitors together
    conversations: ConversationStore
    jobs: JobManager
    metrics: ApiMetrics


def get_state(request: Request) -> ApiState:
    return request.app.state.docqa
