"""docqa's exceptions: a small flat hierarchy whose messages say what to do next.

The library raises these; only the edges (CLI, API, UI) turn them into exit codes,
HTTP statuses or messages on the page.
"""

from __future__ import annotations


class DocqaError(Exception):
    """Base class: the message is written for the person who must act on it."""


class ConfigError(DocqaError):
    """A setting is missing or invalid."""


class MissingDependencyError(DocqaError):
    """An optional dependency is not installed; the message names the install command."""


class CollectionNotFoundError(DocqaError):
    """The named collection has no committed index."""

    def __init__(self, name: str, known: list[str] | None = None) -> None:
        hint = f" Known collections: {', '.join(known)}." if known else " No collection exists yet."
        super().__init__(
            f"collection '{name}' does not exist.{hint} Create it with `docqa ingest PATH --collection {name}`."
        )
        self.name = name


class IndexMismatchError(DocqaError):
    """The index was built with another embedding model than the one configured."""


class CollectionLockedError(DocqaError):
    """Another writer holds the collection."""


class IngestError(DocqaError):
    """One input could not be ingested; carries the path so reports can name it."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class ModelServerError(DocqaError):
    """The model server is down, unreachable or answered with an error."""


class StateStoreError(DocqaError):
    """The shared state store (PostgreSQL) is unreachable or failed."""


class GenerationError(DocqaError):
    """The generator failed for a reason other than reachability."""
