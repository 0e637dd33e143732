"""The sources under an answer: file, page, section, relevance, the quoted passage, a download."""

from __future__ import annotations

import mimetypes
from functools import partial
from pathlib import Path
from typing import Any

import streamlit as st

from rag.types import page_ref
from ui.answering import escape_all_markdown, evidence_spans, other_passages, quote_markdown, shown_sources

QUOTE_CHARS = 900  # longer passages are cut in the page (the download has the whole document)


def source_label(citation: dict[str, Any]) -> str:
    name = Path(citation["source"]).name or citation["source"]
    parts = [f"**[{citation['n']}] {escape_all_markdown(name)}**"]
    if citation.get("page") is not None or citation.get("page_label"):
        parts.append(page_ref(citation.get("page"), citation.get("page_label")))
    if citation.get("heading"):
        parts.append(f"section “{escape_all_markdown(citation['heading'])}”")
    return " · ".join(parts)


def render_source(citation: dict[str, Any], key: str, evidence: list[dict[str, Any]] | None = None) -> None:
    path = Path(citation["source"])
    left, right = st.columns([5, 1], vertical_alignment="center")
    with left:
        st.markdown(source_label(citation))
        st.caption(f"relevance {float(citation['score']):.3f}")
    with right:
        if path.is_file():
            st.download_button(
                "Download",
                data=partial(path.read_bytes),  # read only when clicked, not on every rerun
                file_name=path.name,
                mime=mimetypes.guess_type(path.name)[0] or "application/octet-stream",
                key=key,
                on_click="ignore",
                icon=":material/download:",
                help=str(path),
            )
        else:
            st.caption("original file no longer available")
    text = citation["text"].strip()
    st.markdown(quote_markdown(text, evidence_spans(text, citation["n"], evidence or []), QUOTE_CHARS))


def render_sources(message: dict[str, Any], *, expanded: bool = True) -> None:
    title, citations = shown_sources(message)
    if not citations:
        if message.get("declined"):
            st.caption("No passage in this collection was relevant enough to answer from.")
        return
    with st.expander(f"{title} ({len(citations)})", expanded=expanded):
        for i, citation in enumerate(citations):
            if i:
                st.divider()
            render_source(citation, key=f"dl_{message['id']}_{i}", evidence=message.get("evidence"))
    others = other_passages(message)
    if others:
        with st.expander(f"Other passages consulted ({len(others)})", expanded=False):
            for i, passage in enumerate(others):
                if i:
                    st.divider()
                render_source(passage, key=f"dlo_{message['id']}_{i}")
