"""Ingest embedding on Ray Data (``ingest.engine = "ray"``).

One Ray Data pass per flush: ``from_items`` of the texts, ``map_batches`` over a pool of actors that each
build the embedder once from ``settings.embedder`` (a loaded model is never pickled: every Ray node needs
docqa installed and the model at the same path), rows put back in the caller's order.

With ``ingest.ray_address`` unset the run starts a local cluster (``ray_num_cpus`` CPUs, no dashboard,
worker logs kept out of the terminal) and stops it when the run ends; with an address it joins that
cluster and leaves it running. Ray is told never to report usage statistics, so starting it reaches no
network.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from types import ModuleType
from typing import Any

import numpy as np

from rag.embedder import Embedder
from rag.errors import ConfigError, MissingDependencyError
from rag.settings import EmbedderSettings, Settings

INSTALL = "`.venv/bin/pip install -e '.[ray]'` (or `make setup`)"
ADDRESS_FIELD = "ingest.ray_address (DOCQA_INGEST_RAY_ADDRESS)"


class _LocalCluster:
    """The local Ray cluster this process started: Ray's connection is per process, so concurrent runs
    (API jobs on two collections) share it, and the last one to finish stops it."""

    lock = threading.Lock()
    users = 0


def import_ray() -> ModuleType:
    """Ray with Ray Data, or an error naming the install command."""
    try:
        import ray
        import ray.data  # the [data] extra: pandas, pyarrow
    except ImportError as exc:
        raise MissingDependencyError(
            f"ingest.engine = 'ray' needs Ray Data: {INSTALL}; or set DOCQA_INGEST_ENGINE=local."
        ) from exc
    return ray


def check_address(address: str, timeout_s: float) -> None:
    """Fail in seconds, naming the setting, when the cluster's address takes no connection (ray.init
    itself retries for a minute and then says little)."""
    if address in ("auto", "local"):
        return
    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(
            f"{ADDRESS_FIELD} = {address!r} is not a Ray address: give 'HOST:PORT' of the head node (as "
            "`ray start --head` prints it), 'ray://HOST:10001', 'auto', or leave it unset for a local cluster."
        )
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise ConfigError(
            f"{ADDRESS_FIELD} = {address!r}: no Ray cluster answers there ({exc.strerror or exc}). Start one with "
            "`ray start --head` on that host, correct the address, or unset it to embed on a local cluster."
        ) from exc


class _EmbedBatch:
    """The Ray Data callable: one instance per actor, which builds its embedder once and reuses it."""

    def __init__(self, embedder: dict[str, Any]) -> None:
        from rag.embedder import build_embedder

        self.embedder = build_embedder(EmbedderSettings.model_validate(embedder))

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        vectors = self.embedder.embed([str(t) for t in batch["text"]])
        return {"row": batch["row"], "vector": vectors}


class RayEngine:
    """Embeds on Ray Data; connects (or starts a local cluster) on the first texts, so a run with nothing
    to embed never starts Ray."""

    def __init__(self, settings: Settings, embedder: Embedder) -> None:
        if embedder.model_id != settings.embedder.model:
            raise ConfigError(
                f"ingest.engine = 'ray' builds the embedder on the Ray actors from embedder.model "
                f"({settings.embedder.model!r}), but this run holds {embedder.model_id!r}; make them the same."
            )
        self.settings = settings
        self.embedder = embedder
        self.flush_chunks = settings.ingest.ray_flush_chunks
        self._ray: ModuleType | None = None
        self._owns_cluster = False

    def _connect(self) -> ModuleType:
        if self._ray is not None:
            return self._ray
        ray = import_ray()
        opts = self.settings.ingest
        # Read by ray.init; off, starting Ray reaches no network and asks no question.
        os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
        quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
        with _LocalCluster.lock:
            if opts.ray_address is not None:
                check_address(opts.ray_address, opts.ray_connect_timeout_s)
                if not ray.is_initialized():
                    try:
                        ray.init(address=opts.ray_address, **quiet)
                    except (ConnectionError, RuntimeError, ValueError) as exc:
                        raise ConfigError(
                            f"{ADDRESS_FIELD} = {opts.ray_address!r}: Ray could not join that cluster ({exc}). "
                            "Check that it runs the same Ray and Python versions, or unset the address."
                        ) from exc
            elif _LocalCluster.users or not ray.is_initialized():
                # Ours (now or already): counted, so the last run using it stops it.
                if not ray.is_initialized():
                    ray.init(num_cpus=opts.ray_num_cpus, include_dashboard=False, **quiet)
                _LocalCluster.users += 1
                self._owns_cluster = True
            # else: the process joined a cluster itself (a notebook, a test); use it, leave it running.
        self._ray = ray  # from here on close() stops what was started
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        for handler in logging.getLogger("ray.data").handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setLevel(logging.WARNING)  # the terminal; Ray's session log file keeps the rest
        return ray

    def embed(self, texts: list[str]) -> np.ndarray:
        dim = self.embedder.dim
        if not texts:
            return np.zeros((0, dim), dtype=np.float32)
        ray = self._connect()
        opts = self.settings.ingest
        rows = ray.data.from_items([{"row": i, "text": t} for i, t in enumerate(texts)])
        embedded = rows.map_batches(
            _EmbedBatch,
            fn_constructor_kwargs={"embedder": self.settings.embedder.model_dump(mode="json")},
            batch_size=opts.ray_batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=opts.ray_actors),
            num_cpus=opts.ray_actor_cpus,
            num_gpus=opts.ray_actor_gpus or None,
        )
        out = np.zeros((len(texts), dim), dtype=np.float32)
        seen = np.zeros(len(texts), dtype=bool)
        for batch in embedded.iter_batches(batch_size=None, batch_format="numpy"):
            out[batch["row"]] = batch["vector"]
            seen[batch["row"]] = True
        if not seen.all():
            raise RuntimeError(f"Ray Data returned {int(seen.sum())} of {len(texts)} embeddings")
        return out

    def close(self) -> None:
        if not self._owns_cluster or self._ray is None:
            return
        with _LocalCluster.lock:
            _LocalCluster.users -= 1
            if _LocalCluster.users == 0:
                self._ray.shutdown()
        self._owns_cluster = False
