"""``limit_compute_threads``: every thread pool in the process, loaded before the call (numpy's OpenBLAS, at
CLI import) or after it (faiss' OpenBLAS and OpenMP, on the first search), uses the given size, in the
threads that answer requests too. In a fresh interpreter: a test process's pools are already sized."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers import REPO

PROBE = """
import json, threading
import numpy
from rag.compute import limit_compute_threads
limit_compute_threads(1)
import faiss  # loads its own OpenBLAS and OpenMP after the call
from threadpoolctl import threadpool_info
seen = {}
def look():  # a request thread, started after the call, as uvicorn's workers are
    seen["pools"] = [(p["internal_api"], p["num_threads"]) for p in threadpool_info()]
thread = threading.Thread(target=look)
thread.start()
thread.join()
print(json.dumps(seen["pools"]))
"""


def test_every_pool_has_the_given_size_in_a_new_thread() -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}  # no *_NUM_THREADS from the caller
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, cwd=REPO, check=True)
    pools = json.loads(out.stdout)
    assert {api for api, _ in pools} >= {"openblas", "openmp"}
    assert all(n == 1 for _, n in pools), pools
