"""Prometheus metrics in a registry of the app's own (two apps in one process never share counters)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from rag.types import Answer

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160)

CONTENT_TYPE = CONTENT_TYPE_LATEST


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "docqa_http_requests",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "docqa_http_request_duration_seconds",
            "Time to the end of the response (streams: the whole stream).",
            ["route", "method"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.retrieval = Histogram(
            "docqa_retrieval_seconds", "Retrieval time per answered question.", buckets=_LATENCY_BUCKETS, registry=r
        )
        self.generation = Histogram(
            "docqa_generation_seconds",
            "Model generation time per answered question.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.first_token = Histogram(
            "docqa_time_to_first_token_seconds",
            "Request start to the first streamed answer token.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "docqa_generated_tokens", "Streamed answer pieces (one per model token with vLLM).", registry=r
        )
        self.answers = Counter(
            "docqa_answers", "Answers by outcome (answered, declined, passages_only, error).", ["outcome"], registry=r
        )
        self.rate_limited = Counter("docqa_rate_limited", "Requests refused with 429, by key id.", ["key"], registry=r)
        self.auth_failures = Counter(
            "docqa_auth_failures", "Requests refused by authentication or authorisation.", ["reason"], registry=r
        )
        self.active_streams = Gauge("docqa_active_streams", "Answer streams in progress.", registry=r)
        self.cancelled_streams = Counter(
            "docqa_cancelled_streams", "Answer streams stopped before the end (the client went away).", registry=r
        )
        self.jobs = Counter("docqa_ingest_jobs", "Ingest jobs by final state.", ["state"], registry=r)

    def observe_answer(self, answer: Answer, tokens: int | None = None) -> None:
        self.retrieval.observe(answer.retrieval_ms / 1000)
        if answer.answer is None:
            self.answers.labels("passages_only").inc()
            return
        if answer.generation_ms:
            self.generation.observe(answer.generation_ms / 1000)
        if tokens:
            self.tokens.inc(tokens)
        self.answers.labels("declined" if answer.declined else "answered").inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
