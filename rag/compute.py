"""The size of a process's compute thread pools (BLAS, OpenMP, torch), set once at its start.

Every numerical library sizes its pool for the whole machine by default, and OpenBLAS and OpenMP threads
busy-wait for work. That suits one batch job (an ingest) and ruins a server: an API process answers
requests side by side in threads, each one a few small matmuls (a question, a few dozen sentences), so a
pool per call buys nothing, and on a loaded machine (or with a second replica beside it) the pools spin
against the request threads and each other: a 12 x 384 matmul took 4x longer with two threads than one
on a 2-core machine under load, and two replicas served 0.13-0.17x the requests of one.
"""

from __future__ import annotations

import os
import sys

# Read by the libraries when they load: what a library loaded later (faiss' OpenMP, torch) starts with.
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


def limit_compute_threads(threads: int) -> None:
    """At most ``threads`` threads per numerical call in this process (and its children), from now on.

    The variables cover libraries not loaded yet; threadpoolctl resizes the BLAS pools already loaded
    (numpy's, at CLI import), and torch, when loaded, is told directly. Call it before the first request:
    an OpenMP library already loaded keeps its size in threads other than the caller."""
    if threads < 1:
        raise ValueError(f"compute threads must be at least 1, not {threads}")
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)


def usable_cores() -> int:
    """Cores this process may run on: a container's CPU set, not the host's count (which the libraries
    read by default, so a 2-core container on a 64-core host would start 64 spinning threads)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def threads_for(setting: int) -> int:
    """A ``*.compute_threads`` setting resolved: 0 means every usable core."""
    return setting or usable_cores()
