"""Ingest progress for the page: the ingestor's Progress protocol as a callback (files done, total files)."""

from __future__ import annotations

from collections.abc import Callable


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
