"""Uploaded files: safe names, saved under ``<state_dir>/uploads/<collection>/``, then ingested.

The browser chooses the file name, so it is treated as hostile: only its last path component is
kept, unusual characters are replaced, and the result must stay inside the uploads folder.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from rag.errors import DocqaError
from rag.settings import Settings
from rag.store import validate_collection_name

MAX_NAME_CHARS = 120
_UNSAFE = re.compile(r"[^\w.\- ()]+", re.UNICODE)


def uploads_root(settings: Settings) -> Path:
    """Where the UI keeps the files staff upload (one folder per collection)."""
    return settings.state_dir / "uploads"


class UploadedFileLike(Protocol):
    name: str

    def getvalue(self) -> bytes: ...


def sanitise_filename(name: str) -> str:
    """A plain file name from whatever the browser sent ('../../etc/passwd' -> 'passwd')."""
    name = unicodedata.normalize("NFC", name).replace("\\", "/").split("/")[-1]
    name = _UNSAFE.sub("_", name).strip(" .")
    name = re.sub(r"_+", "_", name)
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        stem, suffix = name, ""
    suffix = suffix[:16]
    stem = stem[: MAX_NAME_CHARS - len(suffix) - 1].strip(" .") or "upload"
    return f"{stem}.{suffix}" if suffix else stem


@dataclass(frozen=True)
class SavedUpload:
    original_name: str
    path: Path


def save_uploads(files: Iterable[UploadedFileLike], folder: Path, collection: str) -> list[SavedUpload]:
    """Write each upload to ``folder/<collection>/<safe name>`` (replacing an older upload of that name)."""
    target = (folder / validate_collection_name(collection)).resolve()
    target.mkdir(parents=True, exist_ok=True)
    saved: list[SavedUpload] = []
    for f in files:
        path = (target / sanitise_filename(f.name)).resolve()
        if path.parent != target:  # cannot happen after sanitising; a guard against future edits
            raise DocqaError(f"refusing to save upload '{f.name}' outside {target}")
        tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
        tmp.write_bytes(f.getvalue())
        os.replace(tmp, path)
        saved.append(SavedUpload(f.name, path))
    return saved


def is_upload(path: str | Path, folder: Path) -> bool:
    """Whether a stored document is a copy the UI saved (and so may delete with the document)."""
    try:
        Path(path).resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


class FileProgress:
    """Adapts the ingestor's Progress protocol to a callback with (files done, total files)."""

    def __init__(self, report: Callable[[int, int], None]) -> None:
        self.report = report
        self.total = 0
        self.done = 0

    def start(self, total_files: int) -> None:
        self.total = total_files
        self.report(0, total_files)

    def advance(self, files: int, chunks: int) -> None:
        self.done = min(self.total, self.done + files)
        self.report(self.done, self.total)
