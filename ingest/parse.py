"""Turn one file into a ParsedDocument, or raise IngestError with a reason a person can act on.

Every format goes through the same gate: a known suffix, a size limit checked before reading, an
emptiness check, then its parser. Failures inside third-party parsing code are input problems and
become IngestError naming the file; failures raised in this package's own code are bugs and propagate.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ingest.formats import SUPPORTED_SUFFIXES, is_supported
from ingest.parsers.common import ElementBuilder, Unparseable
from ingest.parsers.eml import eml_elements
from ingest.parsers.html import declared_charset, html_elements, markdown_elements
from ingest.parsers.office import check_zip_container, docx_elements, pptx_elements
from ingest.parsers.pdf import pdf_elements
from ingest.parsers.plain import csv_elements, text_elements
from ingest.parsers.textio import decode_bytes
from rag.errors import IngestError
from rag.settings import IngestSettings
from rag.types import ParsedDocument

__all__ = ["SUPPORTED_SUFFIXES", "is_supported", "parse_file"]

_MIB = 1024 * 1024
_SMALL_FILE = 65536  # files up to this size are checked for whitespace-only content up front
_OWN_CODE = str(Path(__file__).resolve().parent)

Parser = Callable[[Path, ElementBuilder, list[str], IngestSettings], str | None]


def parse_file(path: Path, settings: IngestSettings) -> ParsedDocument:
    """Parse ``path`` into elements in reading order; raise IngestError for anything unreadable."""
    path = Path(path)
    kind = SUPPORTED_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        known = ", ".join(sorted(SUPPORTED_SUFFIXES))
        raise IngestError(str(path), f"unsupported file type '{path.suffix or '(none)'}': convert it to one of {known}")
    _check_size(path, settings)
    builder = ElementBuilder()
    warnings: list[str] = []
    try:
        title = _PARSERS[kind](path, builder, warnings, settings)
    except Unparseable as exc:
        raise IngestError(str(path), exc.reason) from exc
    except OSError as exc:
        raise IngestError(str(path), f"cannot read the file: {exc.strerror or exc}") from exc
    except Exception as exc:
        if _raised_in_own_code(exc):
            raise
        raise IngestError(
            str(path),
            f"the {kind.upper()} could not be parsed ({type(exc).__name__}: {exc}); the file is probably "
            "damaged: open and re-save it, or export it to PDF",
        ) from exc
    if not builder.elements:
        raise IngestError(
            str(path), "no text found in it: the document is empty or holds only images; nothing to index"
        )
    return ParsedDocument(
        str(path),
        kind,
        builder.elements,
        title=title or None,
        warnings=warnings,
        page_labels=builder.page_labels,
        stats=builder.stats,
    )


def _check_size(path: Path, settings: IngestSettings) -> None:
    try:
        stat = path.stat()
    except OSError as exc:
        raise IngestError(str(path), f"cannot read the file: {exc.strerror or exc}") from exc
    if not path.is_file():
        raise IngestError(str(path), "not a regular file")
    if stat.st_size > settings.max_file_mb * _MIB:
        raise IngestError(
            str(path),
            f"file too large: {stat.st_size / _MIB:.1f} MB, above the {settings.max_file_mb:g} MB limit; "
            "split it, or raise DOCQA_INGEST_MAX_FILE_MB",
        )
    if stat.st_size == 0:
        raise IngestError(str(path), "empty file (0 bytes): nothing to index")
    if stat.st_size <= _SMALL_FILE and not path.read_bytes().strip():
        raise IngestError(str(path), "empty file (whitespace only): nothing to index")


def _raised_in_own_code(exc: BaseException) -> bool:
    """Did the innermost frame of ``exc`` belong to this package (a bug) rather than a library?"""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and tb.tb_frame.f_code.co_filename.startswith(_OWN_CODE)


def _read_text(path: Path, declared: str | None = None) -> str:
    text, _ = decode_bytes(path.read_bytes(), declared)
    if not text.strip():
        raise Unparseable("empty file (whitespace only): nothing to index")
    return text


def _pdf(path: Path, builder: ElementBuilder, warnings: list[str], settings: IngestSettings) -> str | None:
    return pdf_elements(path, builder, warnings, settings)


def _docx(path: Path, builder: ElementBuilder, warnings: list[str], settings: IngestSettings) -> str | None:
    check_zip_container(path, "docx", settings)
    return docx_elements(path, builder)


def _pptx(path: Path, builder: ElementBuilder, warnings: list[str], settings: IngestSettings) -> str | None:
    check_zip_container(path, "pptx", settings)
    return pptx_elements(path, builder)


def _html(path: Path, builder: ElementBuilder, warnings: list[str], settings: IngestSettings) -> str | None:
    with open(path, "rb") as fh:
        declared = declared_charset(fh.read(4096))
    title = html_elements(_read_text(path, declared), builder)
    return title or builder.first_title()


def _md(path: Path, builder: ElementBuilder, warnings: list[str], settings: IngestSettings) -> str | None:
    title = markdown_elements(_read_text(path), builder)
    return title or builder.first_title()


def _txt(path: Path, builder: ElementBuilder, warnings: list[str], settings: IngestSettings) -> str | None:
    text_elements(_read_text(path), builder)
    first = builder.elements[0] if builder.elements else None
    return first.text if first is not None and first.kind == "Title" else None


def _csv(path: Path, builder: ElementBuilder, warnings: list[str], settings: IngestSettings) -> str | None:
    csv_elements(_read_text(path), builder)
    return None


def _eml(path: Path, builder: ElementBuilder, warnings: list[str], settings: IngestSettings) -> str | None:
    return eml_elements(path.read_bytes(), builder, warnings)


_PARSERS: dict[str, Parser] = {
    "pdf": _pdf,
    "docx": _docx,
    "pptx": _pptx,
    "html": _html,
    "md": _md,
    "txt": _txt,
    "csv": _csv,
    "eml": _eml,
}
