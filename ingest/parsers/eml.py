"""E-mail messages (.eml, RFC 5322): subject as title, sender/recipients/date as context, then the body."""

from __future__ import annotations

from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser

from ingest.parsers.common import ElementBuilder, Unparseable
from ingest.parsers.html import html_elements
from ingest.parsers.plain import text_elements
from ingest.parsers.textio import decode_bytes

_CONTEXT_HEADERS = ("From", "To", "Cc", "Date")


def eml_elements(data: bytes, builder: ElementBuilder, warnings: list[str]) -> str | None:
    """Fill ``builder`` from the message in ``data``; return its subject. Attachments are skipped."""
    if b"\x00" in data[:65536]:
        raise Unparseable("contains NUL bytes: it looks like binary data, not an e-mail message")
    msg = BytesParser(policy=policy.default).parsebytes(data)
    if not isinstance(msg, EmailMessage) or not any(msg.get(h) for h in ("From", "Subject", "Date", "To")):
        raise Unparseable(
            "no e-mail headers found (From/To/Subject/Date): is it really an .eml message? "
            "If it is plain text, rename it to .txt"
        )
    subject = _header(msg, "Subject")
    if subject:
        builder.title(subject)
    context = [f"{name}: {value}" for name in _CONTEXT_HEADERS if (value := _header(msg, name))]
    if context:
        builder.add("\n".join(context), "UncategorizedText")
    body = msg.get_body(preferencelist=("plain", "html"))
    if body is not None:
        text = _content(body)
        if body.get_content_subtype() == "html":
            html_elements(text, builder)
        else:
            text_elements(text, builder, detect_headings=False)
    for part in msg.iter_attachments():
        name = part.get_filename() or part.get_content_type()
        warnings.append(f"attachment {name!r} ignored: save it and ingest it as its own file")
    return subject or None


def _header(msg: EmailMessage, name: str) -> str:
    try:
        value = msg.get(name)
    except (ValueError, IndexError, TypeError):  # the stdlib header parser on malformed input
        value = next((raw for key, raw in msg.raw_items() if key.lower() == name.lower()), "")
    return " ".join(str(value or "").split())


def _content(part: Message) -> str:
    """The part's text, decoded by its declared charset, or detected when that is missing or unknown."""
    try:
        return str(part.get_content())  # type: ignore[attr-defined]
    except (LookupError, UnicodeDecodeError):
        payload = part.get_payload(decode=True)
        return decode_bytes(payload if isinstance(payload, bytes) else b"")[0]
