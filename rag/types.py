"""Plain data passed between the packages: parsed elements, chunks, questions, hits, citations, answers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from rag.timing import Timings


@dataclass(frozen=True)
class Element:
    """One structural piece of a parsed document (a title, a paragraph, a table, a list item)."""

    text: str
    kind: str = "NarrativeText"  # unstructured's category names: Title, NarrativeText, ListItem, Table, ...
    page: int | None = None  # 1-based page (PDF) or slide (PPTX); None where the format has none
    heading: str | None = None  # nearest section heading above this element


@dataclass
class ParsedDocument:
    path: str
    doc_type: str  # pdf, docx, pptx, html, md, txt, csv, eml
    elements: list[Element]
    title: str | None = None
    warnings: list[str] = field(default_factory=list)
    page_labels: dict[int, str] = field(default_factory=dict)  # physical page -> printed label (PDF)
    stats: dict[str, int] = field(default_factory=dict)  # parser figures for the ingest report


@dataclass(frozen=True)
class ChunkDraft:
    """A chunk before it is embedded and stored."""

    text: str
    page: int | None = None
    page_end: int | None = None
    heading: str | None = None
    element_type: str = "NarrativeText"
    n_tokens: int = 0
    page_label: str | None = None  # the page number printed on the page, where it differs from ``page``


@dataclass
class StoredChunk:
    id: int
    content_hash: str  # hash of the document content the chunk came from
    ordinal: int  # position in the document
    text: str
    page: int | None
    page_end: int | None
    heading: str | None
    element_type: str
    sources: list[str]  # document paths with this content (identical files are stored once)
    doc_type: str | None = None
    page_label: str | None = None  # printed page number (PDF /PageLabels or running footer)

    @property
    def source(self) -> str:
        return self.sources[0] if self.sources else ""


@dataclass(frozen=True)
class Filters:
    """Metadata filters passed through to retrieval."""

    source_glob: str | None = None  # SQLite GLOB on the document path, e.g. '*/policies/*'
    doc_types: tuple[str, ...] | None = None  # e.g. ('pdf', 'docx')

    @property
    def active(self) -> bool:
        return bool(self.source_glob or self.doc_types)


@dataclass(frozen=True)
class Question:
    """One question to answer: what the CLI, the API and the UI each build, and all the answer pipeline takes.

    ``history`` is the conversation so far, ``{"role": "user"|"assistant", "content": str}`` dicts;
    ``top_k`` and ``rerank`` default to the settings; ``model`` names the served model (the base, or a
    LoRA adapter; None lets the pipeline choose).
    """

    text: str
    collection: str
    history: Sequence[dict[str, str]] = ()
    filters: Filters | None = None
    top_k: int | None = None
    rerank: bool | None = None
    model: str | None = None


@dataclass
class Hit:
    chunk: StoredChunk
    score: float  # the fused (or reranked) score used for ordering
    dense_score: float | None = None  # cosine similarity, when the dense retriever saw it
    bm25_score: float | None = None
    rerank_score: float | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.chunk.source,
            "page": self.chunk.page,
            "heading": self.chunk.heading,
            "score": round(float(self.score), 6),
            "text": self.chunk.text,
        }


@dataclass
class Citation:
    n: int
    source: str
    page: int | None
    text: str
    score: float
    heading: str | None = None
    chunk_id: int | None = None
    page_label: str | None = None  # printed page number, shown instead of the physical ``page``

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Evidence:
    """A supporting span inside a passage: where it is (passage number, file, page, chunk, character
    offsets in the chunk's stored text) and how well it fits the question and answer."""

    n: int
    source: str
    page: int | None
    chunk_id: int
    start: int
    end: int
    text: str
    score: float
    lead: str | None = None  # the sentence or caption introducing the list or table this item or row is of

    @property
    def shown(self) -> str:
        """The text a quote shows and the learned check reads: the item with what it is an item of."""
        return f"{self.lead} … {self.text}" if self.lead else self.text

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["score"] = round(float(self.score), 4)
        return out


@dataclass
class ClaimCheck:
    """One sentence of a generated answer and whether the passages it cites back it."""

    text: str
    cited: list[int]
    supported: bool
    problems: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Answer:
    answer: str | None
    citations: list[Citation]
    retrieval_ms: float
    generation_ms: float
    declined: bool = False
    dropped_markers: int = 0
    model: str | None = None
    standalone_question: str | None = None
    passages: list[Citation] = field(default_factory=list)  # every passage shown to the model
    evidence: list[Evidence] = field(default_factory=list)  # the supporting spans, best first
    grounded: bool | None = None  # every claim of the model's answer backed by its sources (None: not checked)
    mode: str = "generate"  # what is shown: the model's answer ("generate"), or the evidence quoted ("quote")
    checks: list[ClaimCheck] = field(default_factory=list)  # the verifier's verdict on each generated sentence
    answerable: float | None = None  # the answerability model's probability
    generated: str | None = None  # the model's own text, when a quote replaced it
    retried: bool = False  # not the first draft: an alternative, or the draft from the quoted sentence
    load_ms: float = 0.0  # loading models on this process's first question, apart from retrieval_ms
    checked: float | None = None  # the learned check's probability that what is shown answers the question
    evidence_checked: float | None = None  # its probability that the best evidence sentence holds the answer
    timings: Timings | None = None  # retrieval, each model call, verification (set by the pipeline)

    def as_json(self) -> dict[str, Any]:
        return {
            "answer": self.answer,
            "citations": [c.as_json() for c in self.citations],
            "evidence": [e.as_json() for e in self.evidence],
            "grounded": self.grounded,
            "mode": self.mode,
            "retrieval_ms": round(self.retrieval_ms, 1),
            "generation_ms": round(self.generation_ms, 1),
            "load_ms": round(self.load_ms, 1),
            "declined": self.declined,
            "dropped_markers": self.dropped_markers,
            "model": self.model,
            "answerable": None if self.answerable is None else round(self.answerable, 4),
            "checked": None if self.checked is None else round(self.checked, 4),
            "evidence_checked": None if self.evidence_checked is None else round(self.evidence_checked, 4),
            "timings": self.timings.as_json() if self.timings is not None else None,
        }


def page_ref(page: int | None, label: str | None = None) -> str:
    """How a citation names its page: the printed number the reader sees, then the PDF's own page
    number when they differ ("page 143 (PDF page 171)"); "" for formats without pages."""
    if page is None:
        return f"page {label}" if label else ""
    if label and label != str(page):
        return f"page {label} (PDF page {page})"
    return f"page {page}"
