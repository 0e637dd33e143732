"""Structure-first chunking: sections (heading + page) are packed into chunks of at most chunk_tokens.

Rules, in the order they apply:
- A section is the run of elements under one heading on one page, so a chunk never spans two pages
  and its ``heading`` names the section; the heading text itself is not repeated in ``text``.
- A table stays whole as its own chunk when it fits ``max_table_tokens``; a larger one is split by
  rows, each piece repeating the header row. Each table chunk opens with the table's caption (an
  adjacent "Table 3: ..." line, above or below) or else the sentence that introduces it ("... as
  follows:"), so a piece retrieved alone says what it lists.
- A list or code block stays in one chunk with the sentence that introduces it (text ending in ":"):
  the two are packed together, into a fresh chunk when they do not fit the current one; a block too
  large for any chunk is cut between items or lines, each piece after the first opening with that
  sentence again.
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

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace

from langchain_text_splitters import RecursiveCharacterTextSplitter

from rag.sentences import split_sentences
from rag.settings import IngestSettings
from rag.types import ChunkDraft, Element, ParsedDocument

TokenCounter = Callable[[str], int]

_JOIN = "\n\n"
_GLUE = "\n"  # between an introducing sentence and its block, and between the items of that block
_BLOCKS = frozenset({"ListItem", "CodeSnippet"})
_CAPTION = re.compile(r"^(?:Table|Tab\.)\s+[\dA-Z][\w.-]*\s*[:.]\s+\S", re.I)
_MAX_CAPTION_WORDS = 30
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
    glue: bool = False  # packed with the next unit: an introducing sentence and its block, items of it
    lead: str | None = None  # the introducing sentence, repeated where the glued run must be cut


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
        members: list[list[Element]] = []
        for el in elements:
            heading = el.text if el.kind == "Title" else el.heading
            current = sections[-1] if sections else None
            if el.kind == "Title" or current is None or (current.heading, current.page) != (heading, el.page):
                sections.append(_Section(heading, el.page, []))
                opened_by.append(el if el.kind == "Title" else None)
                members.append([])
                if el.kind == "Title":
                    continue  # the heading lives in ChunkDraft.heading, not in the text
            members[-1].append(el)
        for section, title, els in zip(sections, opened_by, members, strict=True):
            section.units = self.section_units(els, section.heading)
            if not section.units and title is not None:
                # A heading with nothing under it (a document title, a parent heading): its text is the
                # content, to be carried into the section that follows.
                section.units.append(_Unit(title.text, self.count(title.text), "Title", section.heading))
        return [s for s in sections if s.units]

    def section_units(self, els: list[Element], heading: str | None) -> list[_Unit]:
        """The units of one section: tables with their caption or lead-in sentence, lists and code
        blocks glued to the sentence that introduces them."""
        units: list[_Unit] = []
        last: Element | None = None  # the element the last units came from
        skip = False
        for i, el in enumerate(els):
            if skip:
                skip = False
                continue
            nxt = els[i + 1] if i + 1 < len(els) else None
            if el.kind == "Table":
                lead = None
                if nxt is not None and _is_caption(nxt):
                    lead, skip = nxt.text, True
                elif last is not None and _is_caption(last):
                    lead = last.text
                    if units and units[-1].text == last.text:
                        units.pop()  # the caption moves into its table's chunk
                elif last is not None and last.kind not in _BLOCKS and _introduces(last.text):
                    lead = _last_sentence(last.text)
                    if units and units[-1].text == last.text == lead:
                        units.pop()  # a lead-in sentence standing alone moves too
                units.extend(self.table_units(el.text, lead, heading))
            else:
                pieces = self.units(el, heading)
                if el.kind in _BLOCKS and last is not None and units and not units[-1].alone:
                    if last.kind not in _BLOCKS and _introduces(last.text):  # "... as follows:" and its block
                        units[-1] = replace(units[-1], glue=True, lead=_last_sentence(last.text))
                    elif last.kind == el.kind == "ListItem" and _run_has_lead(units):  # the list goes on
                        units[-1] = replace(units[-1], glue=True)
                for k in range(len(pieces) - 1):  # a block cut in pieces: the pieces stay together
                    if el.kind in _BLOCKS:
                        pieces[k] = replace(pieces[k], glue=True)
                units.extend(pieces)
            last = el
        return units

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
        if tokens <= self.budget:
            return [_Unit(el.text, tokens, el.kind, heading)]
        return [_Unit(t, self.count(t), el.kind, heading) for t in self.split_text(el.text)]

    def table_units(self, text: str, lead: str | None, heading: str | None) -> list[_Unit]:
        """A table as one unit when it fits ``max_table_tokens``, else pieces of whole rows; each
        opens with ``lead`` (caption or lead-in sentence), the pieces with the header row too."""
        whole = f"{lead}\n{text}" if lead else text
        tokens = self.count(whole)
        if tokens <= self.settings.max_table_tokens:
            return [_Unit(whole, tokens, "Table", heading, alone=True)]
        if lead and self.count(lead) > self.budget // 4:
            lead = None  # a lead-in this long would crowd out the rows
        return [_Unit(t, self.count(t), "Table", heading, alone=True) for t in self.split_table(text, lead)]

    def split_text(self, text: str) -> list[str]:
        return [piece for piece in self.splitter.split_text(text) if piece.strip()]

    def split_table(self, text: str, lead: str | None = None) -> list[str]:
        """Row groups that fit chunk_tokens, each starting with ``lead`` and the header row."""
        header, *rows = text.split("\n")
        if lead:
            header = f"{lead}\n{header}"
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
        """Greedy packing in order; tables (and table pieces) always stand alone, and a glued run
        (a lead-in and its block) moves whole into a fresh chunk when it fits one."""
        chunks: list[ChunkDraft] = []
        group: list[_Unit] = []
        used = 0
        for run in _runs(units):
            if run[0].alone:
                if group:
                    chunks.append(self.draft(group, page))
                chunks.append(self.draft(run, page))
                group, used = [], 0
                continue
            cost = sum(u.tokens for u in run) + self.join_tokens * (len(run) - 1)
            if group and used + self.join_tokens + cost <= self.budget:
                group.extend(run)
                used += self.join_tokens + cost
                continue
            if cost <= self.budget:
                if group:
                    chunks.append(self.draft(group, page))
                group, used = list(run), cost
                continue
            lead = run[0].lead
            for k, unit in enumerate(run):  # too large for one chunk: cut between its units
                cost = unit.tokens + (self.join_tokens if group else 0)
                if group and used + cost > self.budget:
                    chunks.append(self.draft(group, page))
                    group, used, cost = [], 0, unit.tokens
                    if lead and k > 0 and self.count(lead) + self.join_tokens + unit.tokens <= self.budget:
                        group, used = (
                            [_Unit(lead, self.count(lead), "NarrativeText", unit.heading, glue=True)],
                            (self.count(lead) + self.join_tokens),
                        )
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
        parts = []
        for k, u in enumerate(units):
            if k:
                parts.append(_GLUE if units[k - 1].glue else _JOIN)
            parts.append(self.render(u, heading))
        text = "".join(parts)
        if any(u.kind == "Table" for u in units):
            kind = "Table"
        else:
            weight: Counter[str] = Counter()
            for u in units:
                weight[u.kind] += u.tokens
            kind = weight.most_common(1)[0][0]
        return ChunkDraft(text, page, page, heading, kind, self.count(text))


def _runs(units: list[_Unit]) -> list[list[_Unit]]:
    """Consecutive units linked by ``glue``, each run a list (a unit alone is a run of one)."""
    runs: list[list[_Unit]] = []
    for unit in units:
        if runs and runs[-1][-1].glue and not unit.alone and not runs[-1][-1].alone:
            runs[-1].append(unit)
        else:
            runs.append([unit])
    return runs


def _run_has_lead(units: list[_Unit]) -> bool:
    """Whether the last unit belongs to a glued run that opened with an introducing sentence."""
    for k in range(len(units) - 1, -1, -1):
        if k < len(units) - 1 and not units[k].glue:
            return False
        if units[k].lead is not None:
            return True
    return False


def _introduces(text: str) -> bool:
    """Text that announces what follows: "... as follows:", "Run:"."""
    return text.rstrip().endswith(":")


def _last_sentence(text: str) -> str:
    sentences = split_sentences(text)
    return sentences[-1] if sentences else text


def _is_caption(el: Element) -> bool:
    if el.kind == "Caption":
        return True
    return len(el.text.split()) <= _MAX_CAPTION_WORDS and _CAPTION.match(el.text) is not None
