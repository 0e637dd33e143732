"""Where an ingest run embeds its chunks: in this process (``local``) or on Ray Data actors (``ray``).

An engine takes the texts a run needs embedded (the incremental rules have already left out every text
whose vector is stored) and gives back their L2-normalised float32 rows in the same order. Parsing,
chunking, the incremental skip and the single commit stay in ``ingest.pipeline`` whichever engine runs,
so a failed embedding leaves the previous index as it was. ``ingest.engine`` picks one, here only.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

import numpy as np

from rag.embedder import Embedder
from rag.settings import Settings

LOCAL_FLUSH_CHUNKS = 512  # chunks gathered across files before one local embedding pass


class EmbedEngine(Protocol):
    """Embeds one run's texts; ``flush_chunks`` is how many chunks the run gathers before calling it."""

    flush_chunks: int

    def embed(self, texts: list[str]) -> np.ndarray: ...

    def close(self) -> None: ...


class LocalEngine:
    """The embedder the process already holds: today's behaviour, the default."""

    flush_chunks = LOCAL_FLUSH_CHUNKS

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.embedder.embed(texts)

    def close(self) -> None:
        pass


@contextmanager
def embed_engine(settings: Settings, embedder: Embedder) -> Iterator[EmbedEngine]:
    """The engine ``settings.ingest.engine`` names, for one run; closed (a Ray cluster it started stopped)
    when the run ends, however it ends."""
    engine: EmbedEngine
    if settings.ingest.engine == "ray":
        from ingest.ray_engine import RayEngine  # Ray is optional and slow to import

        engine = RayEngine(settings, embedder)
    else:
        engine = LocalEngine(embedder)
    try:
        yield engine
    finally:
        engine.close()
