"""The learned answer check: does this sentence, or this span of it, answer *this* question?

Verification (rag/verify.py) asks whether an answer's words occur in its cited source; it cannot see "the
right words about the wrong thing": the neighbouring number, the other name, the first of two items, the
sentence that introduces a table instead of the row that answers. This check is a small cross-encoder, the
bundled all-MiniLM-L6-v2 with its upper four layers fine-tuned and two heads, trained on the tune half of
squad-dev (``finetune/answer_check.py``: the gold sentence, with the answer's place in it, against the other
sentences of its paragraph and article). It reads a question with a candidate together, so the qualifier
that decides between two values ("default", "minimum", "first") is in view.

One forward pass over (question, sentence) feeds two heads:
- ``head`` (the mean of the token states): does the sentence hold the answer? It picks the sentence a quote
  shows and finds on-topic questions that no retrieved sentence answers;
- ``qa`` (each token: start and end of the answer, as an extractive reader): which piece of the sentence is
  the answer? A short answer is judged by how its span compares with the reader's own favourite span of the
  same sentence, times the sentence's probability: the neighbouring value of the same type loses.

The shipped weights hold only what training changed (the upper layers and the heads); the embeddings and
the lowest two layers are the bundled embedder's, read from its package at load time. Inference runs
on docqa's numpy BERT encoder (rag/bert_numpy.py): no torch import on the question path.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from rag.errors import ConfigError

BUNDLED_CHECK = "bundled"
BUNDLED_CHECK_DIR = Path(__file__).resolve().parent / "models" / "answer-check"
WEIGHTS_FILE = "check.safetensors"
CONFIG_FILE = "check.json"
MAX_SPAN_TOKENS = 30  # the reader's favourite span is looked for among spans up to this long


def sentence_pair(question: str, sentence: str) -> tuple[str, str]:
    """The model's input: the question, then the sentence (as BERT reads a pair)."""
    return question.strip(), sentence.strip()


class AnswerChecker(Protocol):
    """Probabilities that candidates answer a question (the seam; the cross-encoder is the implementation)."""

    def warm_up(self) -> None: ...

    def sentences(self, question: str, sentences: Sequence[str]) -> np.ndarray: ...

    def spans(self, question: str, candidates: Sequence[tuple[str, str]]) -> np.ndarray: ...

    def read(self, question: str, sentence: str) -> tuple[str, float]: ...


def resolve_check_path(model: str) -> Path:
    return BUNDLED_CHECK_DIR if model == BUNDLED_CHECK else Path(model)


class CrossEncoderCheck:
    """The trained check on the numpy BERT encoder; loads on first use (``warm_up``), thread-safe."""

    def __init__(self, model: str, embedder_path: str, batch_size: int = 32) -> None:
        self.path = resolve_check_path(model)
        self.embedder_path = embedder_path
        self.batch_size = batch_size
        self._encoder = None
        self._head: tuple[np.ndarray, float] | None = None
        self._qa: tuple[np.ndarray, np.ndarray] | None = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        """Load the weights once; safe to call again."""
        if self._encoder is not None:
            return
        with self._lock:
            if self._encoder is not None:
                return
            from safetensors.numpy import load_file

            from rag.bert_numpy import BertEncoder

            weights_file, config_file = self.path / WEIGHTS_FILE, self.path / CONFIG_FILE
            if not weights_file.is_file() or not config_file.is_file():
                raise ConfigError(
                    f"answer check weights not found in {self.path} (need {WEIGHTS_FILE} and {CONFIG_FILE}): set "
                    "DOCQA_CHECK_MODEL to a directory made by `make answer-check`, or DOCQA_CHECK_ENABLED=false"
                )
            config = json.loads(config_file.read_text())
            encoder = BertEncoder.load(self.embedder_path, config.get("max_seq_length"))
            if encoder is None:
                raise ConfigError(
                    f"the answer check needs the embedder it was trained from ({config.get('base')}); "
                    f"{self.embedder_path} has another shape"
                )
            trained = {k: v.astype(np.float32) for k, v in load_file(str(weights_file)).items()}
            head_w, head_b = trained.pop("head.weight").reshape(-1), float(trained.pop("head.bias").reshape(-1)[0])
            if "qa.weight" not in trained:
                raise ConfigError(f"{weights_file} has no reading head (qa.*): retrain it with `make answer-check`")
            self._qa = (trained.pop("qa.weight"), trained.pop("qa.bias"))
            unknown = set(trained) - set(encoder.weights)
            if unknown:
                raise ConfigError(f"{weights_file} holds weights the encoder does not have: {sorted(unknown)[:3]}")
            encoder.weights.update(trained)
            self._head = (head_w, head_b)
            self._encoder = encoder

    def _forward(self, question: str, sentences: Sequence[str]) -> list[tuple[float, np.ndarray, np.ndarray, list]]:
        """For each sentence: P(it holds the answer), the reader's start and end log-probabilities over its
        tokens, and those tokens' character offsets in the sentence."""
        self.warm_up()
        assert self._encoder is not None and self._head is not None and self._qa is not None
        (w, b), (qa_w, qa_b) = self._head, self._qa
        out = []
        for i in range(0, len(sentences), self.batch_size):
            chunk = [sentence_pair(question, s) for s in sentences[i : i + self.batch_size]]
            x, mask, encodings = self._encoder.states(chunk)
            pooled = (x * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
            probs = 1.0 / (1.0 + np.exp(-(pooled @ w + b)))
            ends = x @ qa_w.T + qa_b  # (batch, length, 2)
            for k, enc in enumerate(encodings):
                tokens = [t for t, sid in enumerate(enc.sequence_ids) if sid == 1]
                if not tokens:
                    out.append((float(probs[k]), np.zeros(0), np.zeros(0), []))
                    continue
                start, end = (_log_softmax(ends[k, tokens, c]) for c in (0, 1))
                out.append((float(probs[k]), start, end, [enc.offsets[t] for t in tokens]))
        return out

    def sentences(self, question: str, sentences: Sequence[str]) -> np.ndarray:
        """P(the sentence holds the answer), one per sentence."""
        return np.array([r[0] for r in self._forward(question, sentences)], dtype=np.float32)

    def spans(self, question: str, candidates: Sequence[tuple[str, str]]) -> np.ndarray:
        """For each (span, its sentence): P(the sentence holds the answer) times the reader's probability of
        the span over that of its favourite span in the sentence (1: the span is the reader's own choice; a
        span not found in the sentence as written scores 0)."""
        sentences = list(dict.fromkeys(sentence.strip() for _, sentence in candidates))
        read = dict(zip(sentences, self._forward(question, sentences), strict=True))
        scores = []
        for span, sentence in candidates:
            p, start, end, offsets = read[sentence.strip()]
            best = _best_span(start, end)[0]
            own = _span_log_prob(span, sentence.strip(), start, end, offsets)
            scores.append(p * float(np.exp(own - best)) if own is not None else 0.0)
        return np.array(scores, dtype=np.float32)

    def read(self, question: str, sentence: str) -> tuple[str, float]:
        """The reader's favourite span of ``sentence`` and P(the sentence holds the answer)."""
        p, start, end, offsets = self._forward(question, [sentence])[0]
        if not offsets:
            return "", p
        _, i, j = _best_span(start, end)
        return sentence.strip()[offsets[i][0] : offsets[j][1]], p


def _log_softmax(v: np.ndarray) -> np.ndarray:
    v = v - v.max()
    return v - np.log(np.exp(v).sum())


def _best_span(start: np.ndarray, end: np.ndarray) -> tuple[float, int, int]:
    """(log-probability, first token, last token) of the reader's favourite span."""
    if not len(start):
        return 0.0, 0, 0
    n = len(start)
    scores = start[:, None] + end[None, :]
    i, j = np.indices((n, n))
    scores = np.where((j >= i) & (j - i < MAX_SPAN_TOKENS), scores, -np.inf)
    flat = int(np.argmax(scores))
    return float(scores.flat[flat]), flat // n, flat % n


def _span_log_prob(span: str, sentence: str, start: np.ndarray, end: np.ndarray, offsets: list) -> float | None:
    """The reader's log-probability of ``span`` where it stands in ``sentence`` (its best occurrence)."""
    best = None
    needle = span.strip()
    if not needle:
        return None
    for m in re.finditer(re.escape(needle), sentence, re.I):
        tokens = [t for t, (x, y) in enumerate(offsets) if y > m.start() and x < m.end()]
        if tokens:
            value = float(start[tokens[0]] + end[tokens[-1]])
            best = value if best is None else max(best, value)
    return best
