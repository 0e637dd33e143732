"""Content hashes, defined once so that the ingest manifest, the upload store, dataset records and the
prepared-model marker all name a file's bytes the same way."""

from __future__ import annotations

import hashlib
from pathlib import Path

BLOCK = 1 << 20  # read in 1 MiB blocks: a large PDF never sits in memory whole


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of the file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()
