"""Prompt assembly and citation mapping: pure functions, so they are tested without a model.

Sources are numbered and placed before the question; the model is asked to answer from them alone
and to cite them as [n]. After generation, markers are mapped back to file, page and passage;
markers that point at no source are dropped and counted, and sentences the model left uncited are
attributed to the passage they overlap most (small models often forget the markers).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rag.types import Citation, Evidence, Hit, StoredChunk, page_ref

DECLINE_TEXT = "The documents do not cover this question."

SYSTEM_PROMPT = (
    "You are a support assistant. Answer the question using only the numbered sources. "
    "Answer briefly, in the words of the source, and cite the source after each sentence, like [1]. "
    f'If the sources do not contain the answer, reply exactly: "{DECLINE_TEXT}"'
)

CONDENSE_PROMPT = (
    "Rewrite the last question so that it can be understood without the conversation. "
    "Reply with the rewritten question only."
)

_MARKER = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")
_MARKER_WITH_SPACE = re.compile(r"\s*\[\d{1,3}(?:\s*,\s*\d{1,3})*\]")
_WORD = re.compile(r"\w+", re.UNICODE)
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_DECLINE_PATTERNS = re.compile(
    r"(do(es)? not (cover|contain|mention|say|provide)|not (covered|mentioned|found|stated) in|"
    r"no information|cannot (find|answer)|can't (find|answer)|don't know|do not know)",
    re.IGNORECASE,
)
_STOP = frozenset(
    "the a an of to in on for and or is are was were be by with as at from that this it its which what "
    "who when where how why do does did can".split()
)


@dataclass
class Passage:
    """What the model sees as one numbered source: one hit, or adjacent hits of one page merged."""

    n: int
    chunks: list[StoredChunk]
    score: float

    @property
    def text(self) -> str:
        return "\n".join(c.text for c in self.chunks)

    @property
    def source(self) -> str:
        return self.chunks[0].source

    @property
    def page(self) -> int | None:
        return self.chunks[0].page

    @property
    def heading(self) -> str | None:
        return self.chunks[0].heading

    def citation(self, n: int | None = None) -> Citation:
        return Citation(
            n=n or self.n,
            source=self.source,
            page=self.page,
            text=self.text,
            score=round(self.score, 6),
            heading=self.heading,
            chunk_id=self.chunks[0].id,
            page_label=self.chunks[0].page_label,
        )


def build_passages(hits: Sequence[Hit], merge_adjacent: bool = True) -> list[Passage]:
    """Number the hits in rank order; hits that are neighbours on the same page become one passage."""
    passages: list[Passage] = []
    for hit in hits:
        chunk = hit.chunk
        if merge_adjacent:
            home = next(
                (
                    p
                    for p in passages
                    if p.chunks[0].content_hash == chunk.content_hash
                    and p.page == chunk.page
                    and any(abs(c.ordinal - chunk.ordinal) == 1 for c in p.chunks)
                ),
                None,
            )
            if home is not None:
                home.chunks = sorted([*home.chunks, chunk], key=lambda c: c.ordinal)
                continue
        passages.append(Passage(n=len(passages) + 1, chunks=[chunk], score=hit.score))
    return passages


def format_source(p: Passage) -> str:
    where = p.source.rsplit("/", 1)[-1]
    if p.page is not None:
        where += f", {page_ref(p.page, p.chunks[0].page_label)}"
    if p.heading:
        where += f", section '{p.heading}'"
    return f"[{p.n}] ({where})\n{p.text}"


def fit_passages(passages: list[Passage], count_tokens: Callable[[str], int], budget: int) -> list[Passage]:
    """Keep the best passages whose formatted text fits ``budget`` tokens (at least one, truncated)."""
    kept: list[Passage] = []
    used = 0
    for p in passages:
        cost = count_tokens(format_source(p)) + 2
        if used + cost > budget:
            if not kept:
                # One passage larger than the whole budget: keep its beginning rather than nothing.
                words = p.text.split()
                while words and count_tokens(" ".join(words)) > budget * 0.9:
                    words = words[: int(len(words) * 0.8)]
                truncated = StoredChunk(**{**p.chunks[0].__dict__, "text": " ".join(words)})
                kept.append(Passage(p.n, [truncated], p.score))
            break
        kept.append(p)
        used += cost
    return kept


def build_messages(question: str, passages: Sequence[Passage], history: Sequence[dict] = ()) -> list[dict]:
    """System rules, earlier turns (for tone and references), then the sources and the question."""
    sources = "\n\n".join(format_source(p) for p in passages)
    user = f"Sources:\n{sources}\n\nQuestion: {question}"
    messages = [{"role": "system", "content": SYSTEM_PROMPT}]
    messages.extend({"role": t["role"], "content": t["content"]} for t in history)
    messages.append({"role": "user", "content": user})
    return messages


def condense_messages(history: Sequence[dict], question: str) -> list[dict]:
    convo = "\n".join(f"{t['role']}: {t['content']}" for t in history)
    return [
        {"role": "system", "content": CONDENSE_PROMPT},
        {"role": "user", "content": f"Conversation:\n{convo}\n\nLast question: {question}"},
    ]


def sane_rewrite(rewrite: str, question: str, history: Sequence[dict]) -> str:
    """Trust a model's standalone rewrite only when it looks like one question (small models often
    answer instead of rewriting); else fall back to the previous user question plus the follow-up,
    which keeps retrieval on topic."""
    text = rewrite.strip().strip('"').splitlines()[0].strip() if rewrite.strip() else ""
    if text.endswith("?") and 3 <= len(text.split()) <= max(40, 3 * len(question.split())):
        return text
    previous = next((t["content"] for t in reversed(history) if t["role"] == "user"), "")
    return f"{previous} {question}".strip()


def strip_markers(text: str) -> str:
    """The text without its ``[n]`` markers (and the space they leave before punctuation)."""
    return re.sub(r"\s+([.,;:!?])", r"\1", _MARKER_WITH_SPACE.sub("", text)).strip()


def quote(evidence: Evidence, passages: Sequence[Passage]) -> tuple[str, list[Citation]]:
    """The evidence sentence quoted with its file and page: what is shown instead of an unchecked answer."""
    passage = next((p for p in passages if p.n == evidence.n), None)
    citation = passage.citation() if passage else None
    page = page_ref(evidence.page, citation.page_label if citation else None)  # the printed page number
    where = evidence.source.replace("\\", "/").rsplit("/", 1)[-1] + (f", {page}" if page else "")
    return f'From {where}: "{evidence.shown}" [{evidence.n}]', [citation] if citation else []


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 1}


def is_decline(text: str) -> bool:
    return bool(_DECLINE_PATTERNS.search(text)) or not text.strip()


def map_citations(text: str, passages: Sequence[Passage], min_overlap: float = 0.5) -> tuple[str, list[Citation], int]:
    """Resolve [n] markers; drop and count unknown ones; attribute uncited sentences by word overlap.

    Returns the answer text (unknown markers removed), the citations in order of first use, and the
    number of dropped markers.
    """
    by_n = {p.n: p for p in passages}
    used: list[int] = []
    dropped = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal dropped
        keep = []
        for raw in match.group(1).split(","):
            n = int(raw)
            if n in by_n:
                keep.append(n)
                if n not in used:
                    used.append(n)
            else:
                dropped += 1
        return "".join(f"[{n}]" for n in keep)

    cleaned = _MARKER.sub(replace, text)
    cleaned = re.sub(r"[ \t]+([.,;:!?])", r"\1", cleaned).strip()
    # Attribution of sentences the model did not cite.
    if passages and not is_decline(cleaned):
        sentences = _SENTENCE.split(cleaned)
        out = []
        for sentence in sentences:
            if _MARKER.search(sentence) or not _words(sentence):
                out.append(sentence)
                continue
            words = _words(sentence)
            best, best_overlap = None, 0.0
            for p in passages:
                overlap = len(words & _words(p.text)) / len(words)
                if overlap > best_overlap:
                    best, best_overlap = p, overlap
            if best is not None and best_overlap >= min_overlap:
                if best.n not in used:
                    used.append(best.n)
                stripped = sentence.rstrip()
                tail = stripped[-1] if stripped and stripped[-1] in ".!?" else ""
                body = stripped[:-1] if tail else stripped
                out.append(f"{body} [{best.n}]{tail}")
            else:
                out.append(sentence)
        cleaned = " ".join(out)
        if not used:
            # No sentence was cited: attribute the answer as a whole when it clearly draws on one passage.
            words = _words(cleaned)
            if words:
                overlaps = [(len(words & _words(p.text)) / len(words), p) for p in passages]
                best_overlap, best = max(overlaps, key=lambda item: item[0])
                if best_overlap >= min_overlap * 0.6:
                    used.append(best.n)
                    cleaned = f"{cleaned} [{best.n}]"
    citations = [by_n[n].citation() for n in used]
    return cleaned, citations, dropped
