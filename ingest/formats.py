"""The document formats docqa reads, by file suffix: a light module (no parser imported), so that the API
and the UI can say what they accept without loading the parsers."""

from __future__ import annotations

from pathlib import Path

SUPPORTED_SUFFIXES: dict[str, str] = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".pptx": "pptx",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".md": "md",
    ".markdown": "md",
    ".txt": "txt",
    ".text": "txt",
    ".rst": "txt",
    ".csv": "csv",
    ".tsv": "csv",
    ".eml": "eml",
}


def is_supported(path: Path) -> bool:
    """True for a suffix docqa can parse; Office lock files (``~$report.docx``) are not documents."""
    path = Path(path)
    return path.suffix.lower() in SUPPORTED_SUFFIXES and not path.name.startswith("~$")
