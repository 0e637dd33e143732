"""A private vLLM server for one job (evaluation, tests, the experiment): base model plus the named adapters,
on a free local port, stopped when the job ends. The user's own `docqa model serve` is left alone."""

from __future__ import annotations

import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from docqa.model_server import ModelServer
from rag.settings import Settings


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(settings: Settings, adapters: Mapping[str, Path]) -> Iterator[Settings]:
    """Start vLLM with ``adapters`` on a free port; yield settings whose llm.base_url points at it (and no
    llm.base_urls, which would win over it)."""
    port = free_port(settings.model.host)
    local = settings.with_overrides(
        model__port=port, llm__base_url=f"http://127.0.0.1:{port}/v1", llm__base_urls=[], llm__backend="openai"
    )
    with ModelServer(local, adapters=dict(adapters), merge=False):  # the base model answers beside its adapters
        yield local
