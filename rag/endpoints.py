"""The model servers one generator spreads its requests over (``llm.base_urls``).

Each request takes the endpoints in ``order()``: those not marked down, fewest requests in flight first
(a rotating start breaks ties, so idle servers take turns), then those marked down, longest down first, as
a last resort. An endpoint that fails before answering is marked down for ``retry_s`` and passed over
until then, so a dead server costs one failed connection per ``retry_s``, not one per request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Endpoint:
    url: str
    in_flight: int = 0
    down_since: float | None = None  # clock time of the failure that marked it down; None while up
    failures: int = 0  # failures in a row


class EndpointPool:
    """Thread-safe choice among endpoints; ``clock`` is injectable so a test can step past ``retry_s``."""

    def __init__(self, urls: list[str], retry_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        if not urls:
            raise ValueError("an endpoint pool needs at least one URL")
        self.endpoints = [Endpoint(url) for url in urls]
        self.retry_s = retry_s
        self.clock = clock
        self._next = 0
        self._lock = threading.Lock()

    def _is_down(self, endpoint: Endpoint, now: float) -> bool:
        return endpoint.down_since is not None and now - endpoint.down_since < self.retry_s

    def order(self) -> list[Endpoint]:
        """Every endpoint, in the order this request should try them."""
        with self._lock:
            now = self.clock()
            n = len(self.endpoints)
            start, self._next = self._next, (self._next + 1) % n
            rotated = [self.endpoints[(start + i) % n] for i in range(n)]
            up = [e for e in rotated if not self._is_down(e, now)]
            down = [e for e in rotated if self._is_down(e, now)]
            up.sort(key=lambda e: e.in_flight)  # stable: equal loads keep the rotation
            down.sort(key=lambda e: e.down_since or 0.0)
            return up + down

    def begin(self, endpoint: Endpoint) -> None:
        with self._lock:
            endpoint.in_flight += 1

    def end(self, endpoint: Endpoint) -> None:
        with self._lock:
            endpoint.in_flight -= 1

    def failed(self, endpoint: Endpoint) -> None:
        """It was refused, timed out or answered 5xx before answering: pass it over for ``retry_s``."""
        with self._lock:
            endpoint.down_since = self.clock()
            endpoint.failures += 1

    def succeeded(self, endpoint: Endpoint) -> None:
        with self._lock:
            endpoint.down_since = None
            endpoint.failures = 0
