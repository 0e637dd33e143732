"""The upload store: files sent through the HTTP API or the staff UI, kept under
``<state_dir>/uploads/<collection>/`` until they are ingested (and as long as they are in the index).

The client chooses the file name, so it is treated as hostile: only its last path component is kept,
unusual characters are replaced, and the result never leaves the collection's folder. Both edges use this
one store, so a file gets the same name whichever way it arrived.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from rag.errors import DocqaError
from rag.hashing import sha256_file
from rag.settings import Settings
from rag.store import validate_collection_name

MAX_NAME_CHARS = 120  # file names longer than this are shortened (the suffix is kept)
COPY_BLOCK = 1 << 20


def safe_filename(name: str | None) -> str:
    """A file name that is only a name: no directories, no leading dots, no control or shell characters."""
    name = unicodedata.normalize("NFKC", name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch if (ch.isalnum() or ch in "._- ()") else "_" for ch in name)
    name = re.sub(r"\s+", " ", name).strip(" ._")
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        stem, suffix = name, ""
    suffix = suffix[:16].lower()
    stem = stem[: MAX_NAME_CHARS - len(suffix) - 1].strip(" ._") or "upload"
    return f"{stem}.{suffix}" if suffix else stem


@dataclass
class SavedUpload:
    name: str  # the name it was stored under (after sanitising and de-duplication)
    original: str  # the name the client sent (shown back, never used as a path)
    path: Path  # absolute
    outcome: str  # "new", "same" (identical file already there) or "replaced"


class UploadStore:
    """Saves uploads under one naming rule and tells the index's documents that came from it apart."""

    def __init__(self, settings: Settings) -> None:
        self.root = settings.state_dir / "uploads"
        self._names = threading.Lock()  # choosing a free name and moving the file there is one step

    def folder(self, collection: str) -> Path:
        """The collection's upload folder (absolute; it may not exist yet)."""
        return (self.root / validate_collection_name(collection)).resolve()

    def save(self, collection: str, original: str | None, stream: IO[bytes], *, replace: bool) -> SavedUpload:
        """Copy an uploaded stream into the collection's upload folder under a safe name.

        Same name and same bytes: nothing new is written. Same name, other bytes: a new name
        (``report-2.pdf``) unless ``replace``, which makes the upload a new version of that document.
        """
        folder = self.folder(collection)
        folder.mkdir(parents=True, exist_ok=True)
        name = safe_filename(original)
        if (folder / name).parent != folder:  # cannot happen after sanitising; a guard against future edits
            raise DocqaError(f"refusing to save upload '{original}' outside {folder}")
        tmp = folder / f".upload-{secrets.token_hex(8)}.part"
        digest = hashlib.sha256()
        try:
            with open(tmp, "wb") as out:
                for block in iter(lambda: stream.read(COPY_BLOCK), b""):
                    digest.update(block)
                    out.write(block)
                out.flush()
                os.fsync(out.fileno())
            with self._names:
                target, outcome = _choose_target(folder, name, digest.hexdigest(), replace)
                if outcome == "same":
                    tmp.unlink()
                else:
                    os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return SavedUpload(target.name, original or "", target, outcome)

    def is_upload(self, path: str | Path, collection: str | None = None) -> bool:
        """Whether a stored document is a file this store saved (for ``collection``, when given)."""
        folder = self.folder(collection) if collection is not None else self.root.resolve()
        return Path(path).resolve().is_relative_to(folder)

    def delete(self, path: str | Path, collection: str | None = None) -> bool:
        """Delete the saved copy of a document that came through this store; other files are left alone."""
        stored = Path(path)
        if self.is_upload(stored, collection) and stored.is_file():
            stored.unlink()
            return True
        return False

    def drop(self, collection: str) -> None:
        """Delete the collection's upload folder with everything in it."""
        shutil.rmtree(self.folder(collection), ignore_errors=True)


def _choose_target(folder: Path, name: str, digest: str, replace: bool) -> tuple[Path, str]:
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        stem, suffix = name, ""
    n = 1
    while True:
        candidate = folder / (name if n == 1 else f"{stem}-{n}{'.' + suffix if suffix else ''}")
        if not candidate.exists():
            return candidate, "new"
        if sha256_file(candidate) == digest:
            return candidate, "same"
        if replace and n == 1:
            return candidate, "replaced"
        n += 1
