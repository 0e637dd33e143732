"""The answer pipeline: condense a follow-up, retrieve, decline or prompt, stream, map citations.

``stream()`` yields events (the CLI, the SSE endpoint and the UI all consume the same ones):
``{"event": "sources", "passages": [Citation]}`` once retrieval is done, ``{"event": "token",
"text": str}`` for each piece shown (each generated piece in ``generate`` mode; the checked answer as
one piece in ``verify`` and ``quote`` modes, preceded by a text-less ``{"event": "progress"}`` per
generated piece), and ``{"event": "final", "answer": Answer}`` last.

The pipeline is given its collaborators (built once, by the application's composition root), and takes one
``Question`` per call: the same request type whichever edge asks.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from collections.abc import Generator as Coroutine
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from typing import Any

from rag.answer_check import AnswerChecker
from rag.answerability import probability, signals
from rag.errors import DocqaError
from rag.evidence import EvidenceSelector, Ranked, units_of
from rag.generation import Generator
from rag.lexical import tokenize
from rag.mentions import unmentioned
from rag.prompting import (
    DECLINE_TEXT,
    Passage,
    build_messages,
    build_passages,
    condense_messages,
    fit_passages,
    is_decline,
    map_citations,
    quote,
    sane_rewrite,
    strip_markers,
)
from rag.retrieval import Retriever
from rag.sentences import split_sentences
from rag.settings import Settings
from rag.store import CollectionReader
from rag.timing import AnswerTimer, ModelCall
from rag.types import Answer, ClaimCheck, Evidence, Question
from rag.verify import (
    answer_problems,
    cut_loops,
    list_item,
    off_topic_problems,
    part_of,
    recite,
    strip_invented_headers,
)

log = logging.getLogger(__name__)

# A draft streams its events and returns the text.
Drafting = Coroutine[dict[str, Any], None, str]
SERVED_MODELS_TTL_S = 60.0  # how long the model server's list of names is trusted


def preferred_model(settings: Settings, served: Collection[str]) -> str:
    """The model every edge answers with by default: the grounded adapter (``answer.adapter``) when the server
    serves it, else the base model. One rule, so the staff UI, the API and the widget give the same answers."""
    adapter = settings.answer.adapter
    return adapter if adapter and adapter in served else settings.llm_model_name


def answering_first(best: list[Evidence], question: str) -> list[Evidence]:
    """The evidence with the first sentence that can answer ``question`` moved to the front (it is what
    a quote shows): a "how many" or "what year" question is not answered by a sentence without a
    number when another of the best sentences has one. Unchanged when none can."""
    fitting = next((e for e in best if not answer_problems(e.text, question)), None)
    return [fitting, *(e for e in best if e is not fitting)] if fitting else best


def sentence_passage(evidence: Evidence, passages: Sequence[Passage]) -> Passage:
    """The evidence sentence as the only source of a prompt (numbered 1, with its passage's file, page and
    section): a small model asked about one sentence copies the answer out of it far more often than out
    of three passages, and what it copies can only be checked against that sentence."""
    passage = next(p for p in passages if p.n == evidence.n)
    chunk = next((c for c in passage.chunks if c.id == evidence.chunk_id), passage.chunks[0])
    return Passage(1, [replace(chunk, text=evidence.shown)], passage.score)


@dataclass
class _Turn:
    """What the answer policy's steps share for one question: the question, its passages, the sentences
    about it, the best evidence (a quote shows ``best[0]``) and a maker of blank answers."""

    question: Question
    standalone: str
    passages: list[Passage]
    history: list[dict]
    model: str
    timer: AnswerTimer
    ranked: Ranked
    kept: set[int]
    about_evidence: list[Evidence]  # the sentences that best fit the question; a short answer comes from one
    best: list[Evidence]
    blank: Callable[[], Answer]

    @property
    def about(self) -> list[str]:
        return [e.text for e in self.about_evidence]


@dataclass
class _Found:
    """What the documents offer a question, before the model is asked."""

    passages: list[Passage] | None  # None: the documents do not hold the answer (decline)
    ranked: Ranked
    answerable: float
    retrieval_ms: float  # up to answerability; fitting the prompt and the check's reading count as verification
    kept: set[int] = field(default_factory=set)  # the passages' numbers that fit the prompt
    best: list[Evidence] = field(default_factory=list)  # what a quote may show, best first
    best_checked: float | None = None  # the learned check's probability for the best of them


class AnswerPipeline:
    """Answers questions from one settings object and the collaborators it is handed.

    ``readers(collection)`` returns the collection's reader, refreshed to its latest commit (and raises
    CollectionNotFoundError for an unknown one); it is called once per question. ``count_tokens`` counts
    the chat model's tokens, to fit the prompt into ``llm.context_window``.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        retriever: Retriever,
        generator: Generator,
        readers: Callable[[str], CollectionReader],
        count_tokens: Callable[[str], int],
        evidence: EvidenceSelector,
        checker: AnswerChecker | None = None,
        gate: AbstractContextManager[Any] | None = None,
    ) -> None:
        self.settings = settings
        # Held around each CPU-bound step (``answer.compute_slots``), never around a model call.
        self.gate: AbstractContextManager[Any] = gate if gate is not None else nullcontext()
        self.checker = checker if settings.check.enabled else None
        self.retriever = retriever
        self.generator = generator
        self.readers = readers
        self.count_tokens = count_tokens
        self.evidence = evidence
        self._served: tuple[float, set[str]] | None = None

    def _recent(self, history: Sequence[dict]) -> list[dict]:
        """The part of the conversation the model sees: the latest ``answer.history_messages`` messages."""
        n = self.settings.answer.history_messages
        return list(history[-n:]) if n else []

    def _standalone(self, question: Question, model: str, timer: AnswerTimer) -> str:
        """The question rewritten to stand alone, when it follows earlier turns."""
        if not any(t["role"] == "user" for t in question.history):
            return question.text
        rewrite = self.generator.chat(
            condense_messages(self._recent(question.history), question.text),
            model=model,
            max_tokens=self.settings.answer.condense_max_tokens,
            temperature=0.0,
            call=timer.call("condense"),
        )
        return sane_rewrite(rewrite, question.text, question.history)

    def served_models(self) -> set[str]:
        """The names the model server publishes, asked once a minute (so registering an adapter and restarting
        the server is picked up); empty while it does not answer (the request itself then reports that)."""
        now = time.monotonic()
        if self._served is None or now - self._served[0] > SERVED_MODELS_TTL_S:
            try:
                served = set(self.generator.models())
            except DocqaError:
                served = set()
            self._served = (now, served)
        return self._served[1]

    def default_model(self) -> str:
        """The grounded adapter when the server publishes it, else the base model."""
        if not self.settings.answer.adapter:
            return self.settings.llm_model_name
        return preferred_model(self.settings, self.served_models())

    def stream(self, question: Question) -> Iterator[dict[str, Any]]:
        """The answer's events (see the module docstring). Loading the embedder, on a process's first
        question, is timed apart (``Answer.load_ms``), so ``retrieval_ms`` is the search alone. The final
        answer carries its ``timings``: retrieval, each model call, verification."""
        t0 = time.perf_counter()
        self.retriever.warm_up()
        load_ms = (time.perf_counter() - t0) * 1000
        timer = AnswerTimer()
        for event in self._events(question, timer):
            if event["event"] == "final":
                event["answer"].load_ms = load_ms
                event["answer"].timings = timer.finish(event["answer"].retrieval_ms)
            yield event

    def _events(self, question: Question, timer: AnswerTimer) -> Iterator[dict[str, Any]]:
        s = self.settings
        mode = s.answer.mode
        model = question.model or self.default_model()
        history = self._recent(question.history)
        t0 = time.perf_counter()
        with self.gate:
            reader = self.readers(question.collection)  # an unknown collection fails here, before the model is asked
            missing = unmentioned(question.text, reader.vocabulary()) if s.answer.decline_unmentioned else []
        if missing:
            # It names what no document mentions: whatever retrieval finds is about something else. The
            # user's own words are read, not a follow-up's rewrite (the model may add a name to it).
            yield from self._decline(model, question.text, (time.perf_counter() - t0) * 1000, None, missing=missing)
            return
        standalone = self._standalone(question, model, timer)
        with self.gate:
            found = self._find(question, reader, standalone, history, t0)
        passages, ranked, answerable, kept, best, best_checked = (
            found.passages, found.ranked, found.answerable, found.kept, found.best, found.best_checked
        )
        retrieval_ms = found.retrieval_ms
        if passages is None:
            # The documents do not hold the answer: say so rather than let the model improvise. The
            # decision depends on the standalone question alone, so it is the same in every turn.
            yield from self._decline(model, standalone, retrieval_ms, answerable)
            return
        if best_checked is not None and best_checked < s.check.decline_below:
            # On topic (retrieval found the passages) yet no sentence of them answers this question.
            yield from self._decline(model, standalone, retrieval_ms, answerable, best_checked)
            return
        shown = [p.citation() for p in passages]
        yield {"event": "sources", "passages": shown}

        def blank() -> Answer:  # an answer to fill: nothing said yet, the retrieval facts set
            return Answer(
                None, [], retrieval_ms, 0.0, False, 0, model, standalone, shown, answerable=answerable,
                evidence_checked=best_checked,
            )

        t1 = time.perf_counter()
        if mode != "generate" and not best:
            # Nothing in the passages can be quoted or checked against (no sentence long enough).
            yield from self._decline(model, standalone, retrieval_ms, answerable)
            return
        about = [e for e in ranked.evidence if e.n in kept][: s.answer.span_sentences]
        turn = _Turn(question, standalone, passages, history, model, timer, ranked, kept, about, best, blank)
        if mode == "quote":
            answer = blank()
            self._quote_instead(answer, best, passages, best_checked)
        else:
            answer = yield from self._chain(turn)
        answer.generation_ms = (time.perf_counter() - t1) * 1000
        if mode != "generate":
            yield {"event": "token", "text": answer.answer}
        yield {"event": "final", "answer": answer}

    def _find(
        self, question: Question, reader: CollectionReader, standalone: str, history: list[dict], t0: float
    ) -> _Found:
        """Retrieval, the evidence ranked, answerability, the passages fitted to the prompt and the sentences a
        quote may show (``_Found``). All CPU: the caller holds the gate."""
        s = self.settings
        retrieval = self.retriever.search(
            reader, standalone, top_k=question.top_k, filters=question.filters, rerank=question.rerank
        )
        passages = build_passages(retrieval.hits, s.retrieval.merge_adjacent)
        ranked = self.evidence.rank(standalone, passages)
        answerable = probability(signals(standalone, retrieval, ranked), s.answer.answerable_weights)
        retrieval_ms = (time.perf_counter() - t0) * 1000
        if not passages or answerable < s.answer.answerable_threshold:
            return _Found(None, ranked, answerable, retrieval_ms)
        budget = s.llm.context_window - s.llm.max_tokens - s.llm.prompt_overhead_tokens
        budget -= sum(self.count_tokens(t["content"]) for t in history) + self.count_tokens(question.text)
        budget = max(budget, s.llm.min_passage_tokens)
        if s.llm.passage_tokens and s.llm.passage_tokens < budget:
            # Fewer prompt tokens (most of a model call's time on a CPU): the passages the evidence points to.
            by_evidence = list(dict.fromkeys(e.n for e in ranked.evidence))
            first = sorted(passages, key=lambda p: by_evidence.index(p.n) if p.n in by_evidence else len(passages))
            passages = sorted(fit_passages(first, self.count_tokens, s.llm.passage_tokens), key=lambda p: p.n)
        else:
            passages = fit_passages(passages, self.count_tokens, budget)
        kept = {p.n for p in passages}
        best, best_checked = self._best_evidence([e for e in ranked.evidence if e.n in kept], standalone)
        return _Found(passages, ranked, answerable, retrieval_ms, kept, best, best_checked)

    def _chain(self, t: _Turn) -> Coroutine[dict[str, Any], None, Answer]:
        """The answer policy: an ordered chain of candidates, the first one accepted is shown.

        1. the model's draft, if it passes every check (in ``generate`` mode it is shown as it is);
        2. one of the model's other replies, then its reply to the best sentence alone, if it is a checked
           piece of that sentence (a shorter form of the quote); both off by default (``answer.alternatives``,
           ``answer.sentence_draft``: on real manuals they cost two calls for no more answers that hold);
        3. the best sentence quoted, if the draft was refused, or the model declined where retrieval is sure
           the answer is there and the sentence can answer the question;
        4. the decline.
        Steps 2 and 3 are skipped where the model declined and retrieval is unsure."""
        s = self.settings
        raw = yield from self._draft(t.question.text, t.passages, t.history, t.model, t.timer.call("draft"))
        draft = t.blank()
        declined = self._check(draft, raw, t.passages, t.standalone, t.ranked.signals, t.kept, t.about)
        if s.answer.mode == "generate":
            return self._declined(draft) if declined else draft  # shown as streamed, unchecked
        if not declined and draft.grounded:
            return draft
        sure = draft.answerable >= s.answer.quote_over_decline
        if declined and not sure:
            return self._declined(draft)
        # A reply sharing words with a refused draft is mostly that claim re-spelled ("commutative algebra"
        # after "combinative algebra"): the same wrong reading, now passing the checks.
        refused = set() if declined else set(tokenize(draft.answer or "")) - set(tokenize(t.standalone))
        if s.answer.alternatives:
            replies = self._alternatives(t.question.text, t.passages, t.history, t.model, t.timer.call("alternatives"))
            shorter = next(filter(None, (self._piece_of_quote(t, self._clean(r), refused) for r in replies)), None)
            if shorter is not None:
                return shorter
        if s.answer.sentence_draft:
            sentence = sentence_passage(t.best[0], t.passages)
            call = t.timer.call("sentence_draft")
            raw = yield from self._draft(t.question.text, [sentence], t.history, t.model, call)
            reply = re.sub(r"\[1\]", f"[{t.best[0].n}]", map_citations(raw, [sentence])[0])
            shorter = self._piece_of_quote(t, reply, refused)
            if shorter is not None:
                return shorter
        if not declined or not answer_problems(t.best[0].text, t.standalone):
            # Never show an unsupported claim: the best evidence, quoted, stands in for it. Where the small
            # model declined (it does so for 40% of answerable questions) and retrieval is sure, the quote is
            # the answer if it can be one (a price question is not answered by a sentence without a number).
            self._quote_instead(draft, t.best, t.passages, draft.evidence_checked)
            return draft
        return self._declined(draft)

    def _piece_of_quote(self, t: _Turn, raw: str, refused: set[str]) -> Answer | None:
        """``raw`` as the answer, if it is a checked piece of the sentence that would be quoted, as written,
        citing that sentence's passage, and not one item of a list there nor a re-spelling of a refused draft."""
        best = t.best[0]
        if not part_of(raw, best.text) or list_item(raw, best.text) or refused & set(tokenize(raw)):
            return None
        answer = t.blank()
        declined = self._check(answer, raw, t.passages, t.standalone, t.ranked.signals, t.kept, t.about)
        if declined or not answer.grounded or {c.n for c in answer.citations} != {best.n}:
            return None
        answer.retried = True
        return answer

    @staticmethod
    def _declined(answer: Answer) -> Answer:
        answer.answer, answer.declined = DECLINE_TEXT, True
        return answer

    def _best_evidence(self, candidates: list[Evidence], question: str) -> tuple[list[Evidence], float | None]:
        """The sentences a quote may show, best first, and the learned check's probability that the best one
        answers the question (None without the check). With the check, the ranker's best ``check.candidates``
        are re-ordered by it: the sentence that introduces a table or the neighbouring one scores low."""
        s = self.settings
        if self.checker is None or not candidates:
            return answering_first(candidates[: s.evidence.max_spans], question), None
        read = candidates[: s.check.candidates]
        probs = self.checker.sentences(question, [e.shown for e in read])
        order = sorted(range(len(read)), key=lambda i: -float(probs[i]))
        return [read[i] for i in order][: s.evidence.max_spans], float(probs[order[0]])

    def _answer_probability(self, question: str, text: str, passages: Sequence[Passage], cited: set[int]) -> float:
        """The learned check's probability that ``text`` answers ``question``. A short answer is judged as a
        span of the cited sentence that holds it (the best, where several do); one not found as written (a
        "Yes", a rephrase) by the cited sentence that best answers; a longer answer as a sentence."""
        assert self.checker is not None
        plain = strip_markers(text).strip().rstrip(".")
        if len(plain.split()) > self.settings.check.max_span_words:
            return float(self.checker.sentences(question, [plain])[0])
        found = units_of([p for p in passages if p.n in cited], self.settings.evidence.max_block_chars)
        units = [u.shown for u in found]
        # The reader was trained on sentences: a span is read in the sentence of its unit that holds it.
        needle = " ".join(plain.lower().split())
        sentences = [x for u in found for x in split_sentences(u.text)]
        holding = [x for x in sentences if needle and needle in " ".join(x.lower().split())]
        if holding:
            return float(self.checker.spans(question, [(plain, u) for u in holding]).max())
        return float(self.checker.sentences(question, units).max()) if units else 0.0

    def _draft(
        self, question: str, passages: Sequence[Passage], history: Sequence[dict], model: str, call: ModelCall
    ) -> Drafting:
        """Generate from ``passages``; the raw text, invented source headers stripped and loops cut."""
        s = self.settings
        pieces: list[str] = []
        for piece in self.generator.stream(
            build_messages(question, passages, history), model=model, max_tokens=s.llm.max_tokens, call=call
        ):
            pieces.append(piece)
            # verify: nothing unchecked leaves; "progress" lets a consumer count pieces and cancel.
            yield {"event": "token", "text": piece} if s.answer.mode == "generate" else {"event": "progress"}
        return self._clean("".join(pieces))

    def _clean(self, raw: str) -> str:
        """A reply as it is checked: invented source headers stripped and repetition loops cut."""
        return cut_loops(strip_invented_headers(raw.strip())[0], self.settings.answer.max_repeats)[0]

    def _alternatives(
        self, question: str, passages: Sequence[Passage], history: Sequence[dict], model: str, call: ModelCall
    ) -> list[str]:
        """The model's other replies; none when the server cannot give them (an OpenAI-compatible server
        without vLLM's continue_final_message, say): they improve an answer, never fail one."""
        messages = build_messages(question, passages, history)
        limit, k = self.settings.llm.max_tokens, self.settings.answer.alternatives
        try:
            return self.generator.alternatives(messages, model=model, max_tokens=limit, k=k, call=call)
        except DocqaError as exc:
            log.warning("no alternative replies (%s); the evidence is quoted instead", exc)
            return []

    def _check(
        self,
        answer: Answer,
        raw: str,
        passages: Sequence[Passage],
        standalone: str,
        signals: Any,
        kept: set[int],
        about_question: Sequence[str] = (),
    ) -> bool:
        """Map ``raw``'s citations into ``answer`` and verify each sentence (``answer.grounded``), and that
        a short answer comes from one of ``about_question`` (the sentences that best fit the question);
        True when the model declined (then nothing is checked and ``grounded`` stays None)."""
        with self.gate:
            text, citations, dropped = map_citations(raw, passages)
            answer.answer, answer.citations, answer.dropped_markers = text, citations, dropped
            if is_decline(text) and not citations:
                return True
            text, checks = recite(text, passages, standalone)
            answer.answer, answer.checks = text, checks
            answer.grounded = all(c.supported for c in checks)
            plain = strip_markers(text)
            answer.citations = [p.citation() for p in passages if f"[{p.n}]" in text] or answer.citations
            cited = {c.n for c in answer.citations} or kept
            answer.evidence = self.evidence.rank(
                standalone, passages, plain, signals=signals, only=cited
            ).evidence[: self.settings.evidence.max_spans]
            problems = off_topic_problems(text, passages, about_question)
            if not re.search(r"\w", plain):
                # "[1] [2]": no claim fails verification, and the check would read the cited sentences as the
                # answer; a reply of citation markers alone says nothing (seen from a larger reader).
                problems = [*problems, "the reply is citation markers alone"]
            if self.checker is not None and answer.grounded and not problems:
                s = self.settings.check
                answer.checked = self._answer_probability(standalone, text, passages, cited)
                short = len(plain.split()) <= s.max_span_words
                if answer.checked < (s.accept_span if short else s.accept_sentence):
                    problems = [f"the learned check doubts it answers the question (p={answer.checked:.2f})"]
            if problems:
                answer.checks.append(ClaimCheck(plain, [], False, problems))
                answer.grounded = False
            return False

    @staticmethod
    def _quote_instead(
        answer: Answer, best: list[Evidence], passages: Sequence[Passage], checked: float | None = None
    ) -> None:
        """Show the best evidence, quoted with its file and page; the model's text is kept as ``generated``."""
        answer.generated = answer.answer
        answer.answer, answer.citations = quote(best[0], passages)
        answer.evidence, answer.mode, answer.checked = best, "quote", checked

    @staticmethod
    def _decline(
        model: str,
        standalone: str,
        retrieval_ms: float,
        answerable: float | None,
        checked: float | None = None,
        missing: Sequence[str] = (),
    ) -> Iterator[dict[str, Any]]:
        """The decline; ``missing``: the question's names the documents never mention, said in the reply."""
        text = DECLINE_TEXT
        if missing:
            text += " They never mention " + ", ".join(f"\u201c{n}\u201d" for n in missing) + "."
        yield {"event": "sources", "passages": []}
        yield {"event": "token", "text": text}
        answer = Answer(
            text, [], retrieval_ms, 0.0, True, 0, model, standalone, [], answerable=answerable,
            checked=checked, evidence_checked=checked,
        )
        yield {"event": "final", "answer": answer}

    def ask(self, question: Question) -> Answer:
        """The final answer of ``stream(question)``."""
        final = None
        for event in self.stream(question):
            if event["event"] == "final":
                final = event["answer"]
        assert final is not None
        return final

    def passages_only(self, question: Question) -> Answer:
        """Retrieval without the model (for when it is down): ``answer`` is None, ``citations`` the passages."""
        t0 = time.perf_counter()
        query = sane_rewrite("", question.text, question.history) if question.history else question.text
        reader = self.readers(question.collection)
        retrieval = self.retriever.search(
            reader, query, top_k=question.top_k, filters=question.filters, rerank=question.rerank
        )
        passages = build_passages(retrieval.hits, self.settings.retrieval.merge_adjacent)
        cites = [p.citation() for p in passages]
        return Answer(None, cites, (time.perf_counter() - t0) * 1000, 0.0, False, 0, None, query, cites)
