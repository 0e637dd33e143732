"""Token buckets: ``per_minute`` steady, ``burst`` requests at once, one bucket per caller key."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

MAX_BUCKETS = 50_000  # past this many callers, buckets that have refilled are forgotten


class RateLimiter:
    """In-process buckets (the default state store: one API process serves the deployment; the PostgreSQL
    store's limiter holds the buckets in the database so that they hold across replicas)."""

    def __init__(self, per_minute: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_minute / 60.0  # tokens per second
        self.capacity = float(max(1, burst))
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill time)
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, key: str) -> float:
        """Spend one token; returns 0 when allowed, else the seconds until a token is available."""
        if not self.enabled:
            return 0.0
        now = self.clock()
        with self._lock:
            if len(self._buckets) > MAX_BUCKETS:
                self._forget_full(now)
            tokens, last = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate

    def wait(self, key: str) -> float:
        """The seconds until ``take`` would pass (0: it would now), spending nothing."""
        if not self.enabled:
            return 0.0
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def _forget_full(self, now: float) -> None:
        """Drop buckets that have refilled: a widget key gets one per visitor, so they must not pile up."""
        full = [k for k, (tokens, last) in self._buckets.items() if tokens + (now - last) * self.rate >= self.capacity]
        for key in full:
            del self._buckets[key]

    @staticmethod
    def retry_after_header(seconds: float) -> str:
        return str(max(1, math.ceil(seconds)))
