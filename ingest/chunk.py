"""Structure-first chunking: sections (heading + page) are packed into chunks of at most chunk_tokens.

Rules, in the order they apply:
- A section is the run of elements under one heading on one page, so a chunk never spans two pages
  and its ``heading`` names the section; the heading text itself is not repeated in ``text``.
- A table stays whole as its own chunk when it fits ``max_table_tokens``; a larger one is split by
  rows, each piece repeating the header row.
- Any other element longer than ``chunk_tokens`` is split by langchain's RecursiveCharacterTextSplitter
  (paragraphs, lines, sentences, words) with ``chunk_overlap`` tokens of overlap.
- A section under ``min_chunk_tokens`` (often a heading with one line, or a heading alone) is carried
  into the next section's first chunk on the same page, prefixed with its own heading; a run of tiny
  sections is carried only until together they reach ``min_chunk_tokens`` (then they form a chunk), so
  an FAQ of short answers does not collapse into one chunk. A tiny last section of a page joins the
  previous chunk of that page if there is room.

Each element is counted once, and each finished chunk once more for an exact ``n_tokens``: linear in
the document, however its sections are shaped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace

from langchain_text_splitters import RecursiveCharacterTextSplitter

from rag.settings import IngestSettings
from rag.types import ChunkDraft, Element, ParsedDocument

TokenCounter = Callable[[str], int]

_JOIN = "\n\n"
_SEPARATORS = ["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", ""]


@dataclass
class _Unit:
    """A piece of text that is never cut further: an element, a split piece, or a table (piece)."""

    text: str
    tokens: int
    kind: str
    heading: str | None  # heading of the section the unit comes from
    prefix: str | None = None  # that heading, shown when the unit lands in another section's chunk
    alone: bool = False  # tables and table pieces form a chunk of their own


@dataclass
class _Section:
    heading: str | None
    page: int | None
    units: list[_Unit]

    @property
    def tokens(self) -> int:
        return sum(u.tokens for u in self.units)


def chunk_document(doc: ParsedDocument, count_tokens: TokenCounter, settings: IngestSettings) -> list[ChunkDraft]:
    """Chunks for ``doc`` in reading order; deterministic for the same input and counter."""
    chunks = _Chunker(count_tokens, settings).run(doc.elements)
    if not doc.page_labels:
        return chunks
    return [replace(c, page_label=doc.page_labels.get(c.page)) if c.page is not None else c for c in chunks]


class _Chunker:
    def __init__(self, count_tokens: TokenCounter, settings: IngestSettings) -> None:
        self.count = count_tokens
        self.settings = settings
        self.budget = settings.chunk_tokens
        self.join_tokens = count_tokens(_JOIN)
        self._splitter: RecursiveCharacterTextSplitter | None = None

    @property
    def splitter(self) -> RecursiveCharacterTextSplitter:
        if self._splitter is None:
            self._splitter = RecursiveCharacterTextSplitter(
                chunk_size=self.budget,
                chunk_overlap=min(self.settings.chunk_overlap, self.budget // 2),
                length_function=self.count,
                separators=_SEPARATORS,
                keep_separator="end",
            )
        return self._splitter

    # -- sections -------------------------------------------------------------------------------

    def run(self, elements: list[Element]) -> list[ChunkDraft]:
        chunks: list[ChunkDraft] = []
        carry: list[_Unit] = []  # tiny sections waiting for the next section of their page
        sections = self.sections(elements)
        for i, section in enumerate(sections):
            tiny = section.tokens < self.settings.min_chunk_tokens and not any(u.alone for u in section.units)
            if tiny and i + 1 < len(sections) and sections[i + 1].page == section.page:
                carry += self.carried(section)
                if sum(u.tokens for u in carry) >= self.settings.min_chunk_tokens:
                    chunks.extend(self.pack(carry, section.page))  # tiny sections together: no longer tiny
                    carry = []
                continue
            if tiny and self.joins_previous(carry + self.carried(section), section.page, chunks):
                carry = []
                continue
            chunks.extend(self.pack(carry + section.units, section.page))
            carry = []
        return chunks

    def sections(self, elements: list[Element]) -> list[_Section]:
        """Group elements into sections; a Title opens one, and so does a new page or heading."""
        sections: list[_Section] = []
        opened_by: list[Element | None] = []
        for el in elements:
            heading = el.text if el.kind == "Title" else el.heading
            current = sections[-1] if sections else None
            if el.kind == "Title" or current is None or (current.heading, current.page) != (heading, el.page):
                sections.append(_Section(heading, el.page, []))
                opened_by.append(el if el.kind == "Title" else None)
                if el.kind == "Title":
                    continue  # the heading lives in ChunkDraft.heading, not in the text
            sections[-1].units.extend(self.units(el, heading))
        for section, title in zip(sections, opened_by, strict=True):
            if not section.units and title is not None:
                # A heading with nothing under it (a document title, a parent heading): its text is the
                # content, to be carried into the section that follows.
                section.units.append(_Unit(title.text, self.count(title.text), "Title", section.heading))
        return [s for s in sections if s.units]

    def carried(self, section: _Section) -> list[_Unit]:
        """The units of a tiny section, its heading prefixed to the first so the context survives."""
        units = list(section.units)
        first = units[0]
        if section.heading and first.kind != "Title":
            prefix_tokens = self.count(section.heading) + self.join_tokens
            units[0] = replace(first, prefix=section.heading, tokens=first.tokens + prefix_tokens)
        return units

    def joins_previous(self, units: list[_Unit], page: int | None, chunks: list[ChunkDraft]) -> bool:
        """Append the tiny last section(s) of a page to the page's previous chunk when they fit."""
        if not chunks:
            return False
        last = chunks[-1]
        if last.page != page or last.element_type == "Table":
            return False
        extra = sum(u.tokens + self.join_tokens for u in units)
        if last.n_tokens + extra > self.budget:
            return False
        text = _JOIN.join([last.text, *(self.render(u, last.heading) for u in units)])
        chunks[-1] = replace(last, text=text, n_tokens=self.count(text))
        return True

    # -- units ----------------------------------------------------------------------------------

    def units(self, el: Element, heading: str | None) -> list[_Unit]:
        tokens = self.count(el.text)
        if el.kind == "Table":
            if tokens <= self.settings.max_table_tokens:
                return [_Unit(el.text, tokens, "Table", heading, alone=True)]
            pieces = self.split_table(el.text)
            return [_Unit(t, self.count(t), "Table", heading, alone=True) for t in pieces]
        if tokens <= self.budget:
            return [_Unit(el.text, tokens, el.kind, heading)]
        return [_Unit(t, self.count(t), el.kind, heading) for t in self.split_text(el.text)]

    def split_text(self, text: str) -> list[str]:
        return [piece for piece in self.splitter.split_text(text) if piece.strip()]

    def split_table(self, text: str) -> list[str]:
        """Row groups that fit chunk_tokens, each starting with the header row."""
        header, *rows = text.split("\n")
        header_tokens = self.count(header) + self.join_tokens
        if header_tokens > self.budget // 2:
            return self.split_text(text)  # a header this long leaves no room for rows: cut it as text
        pieces: list[str] = []
        group: list[str] = []
        used = header_tokens
        for row in rows:
            row_tokens = self.count(row) + self.join_tokens
            if group and used + row_tokens > self.budget:
                pieces.append("\n".join([header, *group]))
                group, used = [], header_tokens
            if header_tokens + row_tokens > self.budget:
                pieces.extend(self.split_text(row))  # one row too long for any piece: cut it as text
                continue
            group.append(row)
            used += row_tokens
        if group or not pieces:
            pieces.append("\n".join([header, *group]))
        return pieces

    # -- packing --------------------------------------------------------------------------------

    def pack(self, units: list[_Unit], page: int | None) -> list[ChunkDraft]:
        """Greedy packing in order; tables (and table pieces) always stand alone."""
        chunks: list[ChunkDraft] = []
        group: list[_Unit] = []
        used = 0
        for unit in units:
            if unit.alone:
                if group:
                    chunks.append(self.draft(group, page))
                chunks.append(self.draft([unit], page))
                group, used = [], 0
                continue
            cost = unit.tokens + (self.join_tokens if group else 0)
            if group and used + cost > self.budget:
                chunks.append(self.draft(group, page))
                group, used, cost = [], 0, unit.tokens
            group.append(unit)
            used += cost
        if group:
            chunks.append(self.draft(group, page))
        return chunks

    def render(self, unit: _Unit, chunk_heading: str | None) -> str:
        if unit.prefix and unit.prefix != chunk_heading:
            return f"{unit.prefix}\n{unit.text}"
        return unit.text

    def draft(self, units: list[_Unit], page: int | None) -> ChunkDraft:
        heading = units[-1].heading
        text = _JOIN.join(self.render(u, heading) for u in units)
        if any(u.kind == "Table" for u in units):
            kind = "Table"
        else:
            weight: Counter[str] = Counter()
            for u in units:
                weight[u.kind] += u.tokens
            kind = weight.most_common(1)[0][0]
        return ChunkDraft(text, page, page, heading, kind, self.count(text))
