"""Decoding text files whose encoding nobody declared (UTF-8, UTF-16 with BOM, Latin-1, Windows-1252...)."""

from __future__ import annotations

import codecs
import re

from charset_normalizer import from_bytes

from ingest.parsers.common import Unparseable

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# charset-normalizer ranks near-ties arbitrarily on short Western text (it happily picks cp1250 and
# turns "crème" into "crčme"); legacy files here are far more often Windows-1252/Latin-1, so those win
# whenever they read as cleanly as the best guess.
_WESTERN = ("cp1252", "latin_1", "iso8859_15")
_CHAOS_MARGIN = 0.05
# Share of control characters (other than tab, newline, carriage return, form feed) above which
# decoded "text" is really binary data that happened to decode.
_MAX_CONTROL_SHARE = 0.01
_CONTROL_CHARS = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f]")
_BINARY_HINT = "it looks like binary data, not text: check the file extension (is it really a text file?)"


def decode_bytes(data: bytes, declared: str | None = None) -> tuple[str, str]:
    """Decode ``data`` and return ``(text, encoding)``; raise Unparseable for binary data.

    Order: a byte-order mark, then ``declared`` (e.g. an HTML meta charset) when it decodes cleanly,
    then strict UTF-8, then charset-normalizer's guess with a Western preference.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return _checked(data.decode(encoding, errors="replace"), encoding)
    if b"\x00" in data:
        raise Unparseable(f"contains NUL bytes: {_BINARY_HINT}")
    if declared:
        try:
            return _checked(data.decode(declared), declared)
        except (LookupError, UnicodeDecodeError):
            pass  # a wrong or unknown declaration: fall through to detection
    try:
        return _checked(data.decode("utf-8"), "utf-8")
    except UnicodeDecodeError:
        pass
    matches = [m for m in from_bytes(data) if not m.encoding.startswith(("utf_16", "utf_32"))]
    if matches:
        best = matches[0]
        for encoding in _WESTERN:
            for match in matches:
                if match.encoding == encoding and match.chaos <= best.chaos + _CHAOS_MARGIN:
                    return _checked(str(match), encoding)
        return _checked(str(best), best.encoding)
    # Nothing plausible: Latin-1 decodes any byte string, and the control-character check then tells
    # text in an odd single-byte encoding apart from binary data.
    return _checked(data.decode("latin-1"), "latin_1")


def _checked(text: str, encoding: str) -> tuple[str, str]:
    sample = text[:65536]
    if sample and len(_CONTROL_CHARS.findall(sample)) > _MAX_CONTROL_SHARE * len(sample):
        raise Unparseable(f"decodes to control characters: {_BINARY_HINT}")
    return text, encoding
