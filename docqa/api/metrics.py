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
        self.stage = Histogram(
            "docqa_answer_stage_seconds",
            "Time per answered question by stage: retrieval, each kind of model call (condense, draft, "
            "alternatives, sentence_draft), verification.",
            ["stage"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.model_first_token = Histogram(
            "docqa_model_first_token_seconds",
            "A streamed model call's start to its first token, by purpose.",
            ["purpose"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.model_tokens = Counter(
            "docqa_model_tokens",
            "Tokens the model server counted, by call purpose and kind (prompt, generated).",
            ["purpose", "kind"],
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
        if answer.timings is not None:
            for stage, ms in answer.timings.stages().items():
                self.stage.labels(stage).observe(ms / 1000)
            for call in answer.timings.calls:
                if call.first_token_ms is not None:
                    self.model_first_token.labels(call.purpose).observe(call.first_token_ms / 1000)
                for kind, n in (("prompt", call.prompt_tokens), ("generated", call.generated_tokens)):
                    if n:
                        self.model_tokens.labels(call.purpose, kind).inc(n)
        if tokens:
            self.tokens.inc(tokens)
        self.answers.labels("declined" if answer.declined else "answered").inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
