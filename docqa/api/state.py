"""What one app instance holds: the services and the API's own state (keys, limits, conversations, jobs),
whose parts come from the state store (``docqa.state``) that ``state.backend`` names."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from docqa.api.jobs import JobManager
from docqa.api.metrics import ApiMetrics
from docqa.services import Services
from docqa.state import Conversations, Keys, RateLimiter, StateStore
from rag.settings import Settings


@dataclass
class ApiState:
    settings: Settings
    services: Services
    keys: Keys
    limiter: RateLimiter  # per staff key, per widget visitor
    widget_limiter: RateLimiter  # per widget key, all its visitors together
    conversations: Conversations
    jobs: JobManager
    metrics: ApiMetrics
    store: StateStore  # what the parts above came from; closed at shutdown


def get_state(request: Request) -> ApiState:
    return request.app.state.docqa
