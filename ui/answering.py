"""Turning the pipeline's events into what the chat page shows and keeps: pure logic, no Streamlit.

The page hands ``AnswerStream.tokens()`` to ``st.write_stream``; once the stream is drained, the
stream object holds the passages and the final Answer, which become one message dict in the
session's conversation (plain data, so it survives reruns).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from rag.types import Answer, Citation
from ui.structure import Segment, segments


def escape_markdown(text: str) -> str:
    """Streamlit renders '$...$' as LaTeX; prices and amounts must stay text."""
    return text.replace("$", "\\$")


_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_{}\[\]()#+\-.!|$~<>])")


def escape_all_markdown(text: str) -> str:
    """Quoted document text is shown as written: a '#' or '|' in a passage is not a heading or a table."""
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", text)


class AnswerStream:
    """Wraps ``AnswerPipeline.stream`` events: yields token texts, remembers sources and the answer."""

    def __init__(self, events: Iterable[dict[str, Any]]) -> None:
        self._events = iter(events)
        self._primed: list[str] = []
        self._was_primed = False
        self.passages: list[Citation] = []
        self.answer: Answer | None = None
        self.text = ""

    def _next_token(self) -> str | None:
        for event in self._events:
            kind = event.get("event")
            if kind == "sources":
                self.passages = list(event["passages"])
            elif kind == "token":
                self.text += event["text"]
                return event["text"]
            elif kind == "final":
                self.answer = event["answer"]
        return None

    def find_sources(self) -> bool:
        """Run retrieval up to the passages (the page shows them while the answer is drafted and checked);
        False when the stream reached an answer or its end first (then ``prime`` has nothing left to wait for)."""
        for event in self._events:
            kind = event.get("event")
            if kind == "sources":
                self.passages = list(event["passages"])
                return True
            if kind == "token":
                self._was_primed = True
                self.text += event["text"]
                self._primed.append(event["text"])
                return False
            if kind == "final":
                self.answer = event["answer"]
                return False
        return False

    def prime(self) -> None:
        """Run retrieval up to the first token (the page shows a spinner meanwhile, not an empty box)."""
        if not self._was_primed:
            self._was_primed = True
            first = self._next_token()
            if first is not None:
                self._primed.append(first)

    def tokens(self) -> Iterator[str]:
        while self._primed:
            yield escape_markdown(self._primed.pop(0))
        while (piece := self._next_token()) is not None:
            yield escape_markdown(piece)


def checking_message(msg_id: str, passages: Sequence[Citation], mode: str) -> dict[str, Any] | None:
    """What is shown while a verify-mode answer is drafted and checked (it arrives whole, so without this the
    page would show nothing for seconds): the passages found; None when nothing is held back to check (generate
    mode streams at once, quote mode asks no model) or nothing was found (the answer is a decline)."""
    if mode != "verify" or not passages:
        return None
    shown = [c.as_json() for c in passages]
    return {"id": msg_id, "role": "assistant", "content": "", "citations": [], "passages": shown}


def assistant_message(
    msg_id: str, question: str, answer: Answer, *, collection: str, model: str | None
) -> dict[str, Any]:
    """The stored form of one answered question."""
    return {
        "id": msg_id,
        "role": "assistant",
        "content": answer.answer or "",
        "question": question,
        "citations": [c.as_json() for c in answer.citations],
        "passages": [c.as_json() for c in answer.passages],
        "evidence": [e.as_json() for e in answer.evidence],
        "mode": answer.mode,
        "grounded": answer.grounded,
        "declined": answer.declined,
        "collection": collection,
        "model": answer.model or model,
        "timing": {
            "retrieval_ms": round(answer.retrieval_ms),
            "generation_ms": round(answer.generation_ms),
            # Where the time went, stage by stage (retrieval, each kind of model call, verification).
            "stages_ms": {k: round(v) for k, v in answer.timings.stages().items()} if answer.timings else {},
        },
    }


def error_message(
    msg_id: str, question: str, error: str, passages: Sequence[Citation], *, collection: str
) -> dict[str, Any]:
    """A question that got no answer: the error, and the passages retrieval found (if it got that far)."""
    return {
        "id": msg_id,
        "role": "assistant",
        "content": "",
        "question": question,
        "error": error,
        "citations": [],
        "passages": [c.as_json() for c in passages],
        "declined": False,
        "collection": collection,
        "model": None,
    }


def history_for_pipeline(messages: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
    """The earlier turns the pipeline may use to understand a follow-up; failed turns are left out."""
    out: list[dict[str, str]] = []
    for msg in messages:
        if msg["role"] == "assistant" and (msg.get("error") or not msg.get("content")):
            if out and out[-1]["role"] == "user":
                out.pop()  # the question that failed is not part of the conversation the model saw
            continue
        out.append({"role": msg["role"], "content": msg["content"]})
    return out


def other_passages(message: dict[str, Any]) -> list[dict[str, Any]]:
    """Passages the model saw but did not cite (shown collapsed, for checking an answer)."""
    if not message.get("citations"):
        return []
    cited = {c.get("chunk_id") for c in message["citations"]}
    return [p for p in message.get("passages", []) if p.get("chunk_id") not in cited]


def shown_sources(message: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """Which passages to list under an answer, and the heading for them."""
    if message.get("citations"):
        return "Sources", message["citations"]
    if message.get("passages"):
        if message.get("error"):
            return "Passages retrieval found", message["passages"]
        return "Passages consulted", message["passages"]
    return "", []


def evidence_spans(text: str, n: int, evidence: Sequence[dict[str, Any]]) -> list[tuple[int, int]]:
    """Where the evidence sentences of passage ``n`` lie in its text, found by their words (the stored
    offsets count from the start of their chunk, and a passage may join several chunks)."""
    spans = []
    for e in evidence:
        if e.get("n") == n and e.get("text"):
            at = text.find(e["text"])
            if at >= 0:
                spans.append((at, at + len(e["text"])))
    return sorted(spans)


def quote_markdown(text: str, spans: Sequence[tuple[int, int]], limit: int) -> str:
    """The passage as a markdown quote, evidence spans highlighted, cut to ``limit`` characters around
    the first span; every character of the document is escaped, so it shows as written. Table rows are a
    markdown table (the evidence row highlighted) and code blocks are fenced (``ui.structure``); a row or
    code line the cut falls in is kept whole."""
    start, end = 0, len(text)
    if end > limit:
        start = max(0, min(spans[0][0] - 200, end - limit)) if spans else 0
        end = min(len(text), start + limit)
    blocks = structure_markdown(text, spans, start, end)
    if not blocks:
        return ">"
    if start > 0:
        blocks = [["…"], *blocks] if _is_block(blocks[0]) else [["… " + blocks[0][0], *blocks[0][1:]], *blocks[1:]]
    if end < len(text):
        blocks = (
            [*blocks, ["…"]] if _is_block(blocks[-1]) else [*blocks[:-1], [*blocks[-1][:-1], blocks[-1][-1] + " …"]]
        )
    lines = [line for k, block in enumerate(blocks) for line in ([""] if k else []) + block]
    return "\n".join("> " + line if line.strip() else ">" for line in lines)


def _is_block(lines: list[str]) -> bool:
    """A table or fenced code (escaped text never starts with '|' or '`'): an ellipsis goes beside it."""
    return lines[0].startswith(("|", "`"))


def structure_markdown(text: str, spans: Sequence[tuple[int, int]], start: int, end: int) -> list[list[str]]:
    """The markdown blocks (each a list of lines) of ``text[start:end]``: text with ``spans`` highlighted,
    tables and code blocks (``ui.structure.segments``); the table rows and code lines ``[start, end)``
    touches are shown whole."""
    blocks: list[list[str]] = []
    for seg in segments(text):
        if seg.end <= start or seg.start >= end:
            continue
        if seg.kind == "table":
            blocks.append(_table_markdown(seg, spans, start, end))
        elif seg.kind == "code":
            a = text.rfind("\n", 0, max(seg.start, start)) + 1
            b = text.find("\n", min(seg.end, end))
            blocks.append(_code_markdown(text[max(a, seg.start) : seg.end if b < 0 else min(b, seg.end)]))
        else:
            lines = _marked_lines(text, spans, max(seg.start, start), min(seg.end, end))
            while lines and not lines[0].strip():
                lines.pop(0)
            while lines and not lines[-1].strip():
                lines.pop()
            if lines:
                blocks.append(lines)
    return blocks


def _marked_lines(text: str, spans: Sequence[tuple[int, int]], start: int, end: int) -> list[str]:
    """``text[start:end]`` escaped, line by line, with the parts inside ``spans`` highlighted."""
    marked = [False] * len(text)
    for a, b in spans:
        for i in range(max(a, start), min(b, end)):
            marked[i] = True
    lines = []
    pos = start
    for line in text[start:end].split("\n"):
        pieces, i = [], pos
        while i < pos + len(line):
            j = i
            while j < pos + len(line) and marked[j] == marked[i]:
                j += 1
            piece = escape_all_markdown(text[i:j])
            if marked[i] and piece.strip():
                # Leading/trailing spaces break the directive: keep them outside it.
                core = piece.strip()
                lead, trail = piece[: len(piece) - len(piece.lstrip())], piece[len(piece.rstrip()) :]
                piece = f"{lead}:orange-background[{core}]{trail}"
            pieces.append(piece)
            i = j
        lines.append("".join(pieces))
        pos += len(line) + 1
    return lines


def _table_markdown(seg: Segment, spans: Sequence[tuple[int, int]], start: int, end: int) -> list[str]:
    """A markdown table of the rows ``[start, end)`` touches, cells escaped (a '|' in a cell stays text),
    the rows an evidence span touches highlighted."""

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c or " " for c in cells) + " |"

    out = [line([escape_all_markdown(c) for c in seg.columns]), line(["---"] * len(seg.columns))]
    for row in seg.rows:
        if row.end <= start or row.start >= end:
            continue
        hit = any(a < row.end and b > row.start for a, b in spans)
        cells = [escape_all_markdown(c) for c in row.cells]
        out.append(line([f":orange-background[{c}]" if hit and c else c for c in cells]))
    return out


def _code_markdown(code: str) -> list[str]:
    """A fenced code block shown as written: the fence is longer than any run of backticks in the code."""
    fence = "`" * max(3, max((len(m) for m in re.findall(r"`+", code)), default=0) + 1)
    return [fence + "text", *code.split("\n"), fence]


def quote_answer_markdown(message: dict[str, Any]) -> str | None:
    """A quoted answer whose evidence is a table row or code, as markdown: "From FILE, page N:", the lead-in,
    the row as a small table with its header (or the code, fenced), the citation. None for any other
    answer (shown as its text). The row's header and the code's extent come from the cited passage the
    evidence lies in (the evidence text alone when it is not found there)."""
    evidence = message.get("evidence") or []
    content = message.get("content") or ""
    if message.get("mode") != "quote" or not evidence or not evidence[0].get("text"):
        return None
    best = evidence[0]
    lead = best.get("lead")
    shown = f"{lead} … {best['text']}" if lead else best["text"]
    at = content.find(f'"{shown}"')
    if at < 0:
        return None
    text, start, end = best["text"], 0, len(best["text"])
    for passage in [*message.get("citations", []), *message.get("passages", [])]:
        found = passage.get("text", "").find(best["text"]) if passage.get("n") == best.get("n") else -1
        if found >= 0:
            text, start, end = passage["text"], found, found + len(best["text"])
            break
    if not any(s.kind != "text" and s.start < end and s.end > start for s in segments(text)):
        return None
    blocks = structure_markdown(text, [], start, end)
    before, after = content[:at].rstrip(), content[at + len(shown) + 2 :].strip()
    parts = [escape_all_markdown(before)]
    if lead:
        parts.append(escape_all_markdown(lead) + " …")
    parts += ["\n".join(block) for block in blocks]
    if after:
        parts.append(escape_all_markdown(after))
    return "\n\n".join(parts)
