"""Where an answer's time goes: retrieval, each model call, and the checking between them.

The pipeline makes one ``AnswerTimer`` per question and hands each generator call a ``ModelCall`` from it
(``timer.call("draft")``); the generator fills in what only it sees: the first piece's arrival, the
server's token counts (vLLM reports them on a stream when asked, ``stream_options.include_usage``) and
the end. The finished ``Timings`` travel on the ``Answer``, so every edge (API, CLI, metrics, evaluation)
reports the same figures.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# What a model call is for, in the order the pipeline makes them.
PURPOSES = ("condense", "draft", "alternatives", "sentence_draft")


@dataclass
class ModelCall:
    """One model request (or, for ``alternatives``, the requests of one step: their tokens summed, their
    time the step's wall clock). None where the server did not say (token counts) or the call was not
    streamed (first token)."""

    purpose: str
    started: float
    clock: Callable[[], float] = field(default=time.perf_counter, repr=False, compare=False)
    prompt_tokens: int | None = None
    generated_tokens: int | None = None
    first_token_ms: float | None = None
    total_ms: float | None = None
    pieces: int = 0  # pieces received: the generated count where the server reports none
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def first_token(self) -> None:
        """The reply's first token is here (the first piece of a stream, or the one-token request of
        ``alternatives``); later calls change nothing."""
        if self.first_token_ms is None:
            self.first_token_ms = (self.clock() - self.started) * 1000

    def piece(self) -> None:
        """A piece of a streamed reply arrived."""
        self.first_token()
        self.pieces += 1

    def usage(self, prompt_tokens: int | None, generated_tokens: int | None) -> None:
        """Token counts as the server reports them; several requests of one step add up (thread-safe)."""
        with self._lock:
            if prompt_tokens is not None:
                self.prompt_tokens = (self.prompt_tokens or 0) + prompt_tokens
            if generated_tokens is not None:
                self.generated_tokens = (self.generated_tokens or 0) + generated_tokens

    def end(self) -> None:
        """The call is over (finished, failed or abandoned); the first end counts."""
        if self.total_ms is None:
            self.total_ms = (self.clock() - self.started) * 1000
            if self.generated_tokens is None and self.pieces:
                self.generated_tokens = self.pieces

    def as_json(self) -> dict[str, Any]:
        return {
            "purpose": self.purpose,
            "prompt_tokens": self.prompt_tokens,
            "generated_tokens": self.generated_tokens,
            "first_token_ms": _ms(self.first_token_ms),
            "total_ms": _ms(self.total_ms),
        }


@dataclass
class Timings:
    """An answer's time by stage. ``verification_ms``: after retrieval and outside model calls, which is
    checking the drafts (with prompt building and quoting, which take little)."""

    retrieval_ms: float = 0.0
    verification_ms: float = 0.0
    total_ms: float = 0.0
    calls: list[ModelCall] = field(default_factory=list)

    def model_ms(self, purpose: str | None = None) -> float:
        return sum(c.total_ms or 0.0 for c in self.calls if purpose is None or c.purpose == purpose)

    def stages(self) -> dict[str, float]:
        """Milliseconds by stage: retrieval, each model-call purpose present (summed), verification."""
        out = {"retrieval": self.retrieval_ms}
        for purpose in dict.fromkeys(c.purpose for c in self.calls):
            out[purpose] = self.model_ms(purpose)
        out["verification"] = self.verification_ms
        return out

    def as_json(self) -> dict[str, Any]:
        return {
            "retrieval_ms": _ms(self.retrieval_ms),
            "verification_ms": _ms(self.verification_ms),
            "total_ms": _ms(self.total_ms),
            "model_calls": [c.as_json() for c in self.calls],
        }


class AnswerTimer:
    """The recorder of one question: model calls as they start, the split into stages when it ends."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.started = clock()
        self.calls: list[ModelCall] = []

    def call(self, purpose: str) -> ModelCall:
        """A new model call, started now, for the generator to fill in."""
        record = ModelCall(purpose, self.clock(), self.clock)
        self.calls.append(record)
        return record

    def finish(self, retrieval_ms: float) -> Timings:
        """The stages, given the pipeline's own retrieval time (which includes rewriting a follow-up: that
        call is counted as ``condense``, not retrieval). Calls still open end now."""
        total = (self.clock() - self.started) * 1000
        for c in self.calls:
            c.end()
        condense = sum(c.total_ms or 0.0 for c in self.calls if c.purpose == "condense")
        models = sum(c.total_ms or 0.0 for c in self.calls)
        retrieval = max(retrieval_ms - condense, 0.0)
        return Timings(retrieval, max(total - retrieval - models, 0.0), total, list(self.calls))


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
