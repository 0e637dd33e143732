"""Ingest throughput with the embedding on Ray Data (``ingest.engine = "ray"``) against the local engine:
the same corpus, the same run, reported as ratios to the local rate.

Four full ingests into fresh collections: local; Ray with a local cluster the run starts and stops
(what ``DOCQA_INGEST_ENGINE=ray`` costs on one machine); Ray on a cluster already up (what a run joining
a running cluster, ``ingest.ray_address``, costs: the actors still load the model once per pass); local
again, so that a load that drifts during the run (a shared machine) weighs on both sides; the baseline
is the mean of the two local runs. All must give the same chunk ids and vectors within 1e-4. The corpus
is bench/ingest.py's (the samples plus SQuAD paragraphs as markdown); ``BENCH_INGEST_DOCS`` sets the
paragraph count.

    python -m bench.ingest_ray
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from bench.common import Timer, write_results
from bench.ingest import build_corpus
from docqa.services import Services
from ingest.ray_engine import import_ray
from rag.settings import Settings

TOLERANCE = 1e-4


def index_vectors(services: Services, collection: str) -> tuple[list[int], np.ndarray]:
    reader = services.reader(collection)
    ids = [int(i) for i in reader.chunk_ids()]
    vectors = reader.embeddings(ids)
    return ids, np.stack([vectors[i] for i in ids])


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # the bench's own ray.init below, as the engine does
    paragraphs = int(os.environ.get("BENCH_INGEST_DOCS", "400"))
    ray = import_ray()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        corpus = root / "corpus"
        build_corpus(corpus, paragraphs)
        base = Settings(data_dir=root / "data")
        local = Services(base)
        embedder = local.embedder  # the driver's model: chunking counts tokens with it on every engine
        embedder.warm_up()
        embedder.embed(["warm-up text"] * 8)
        on_ray = Services(base.with_overrides(ingest__engine="ray"), embedder=embedder)

        runs = {}
        with Timer() as t:
            runs["local"] = local.ingestor.ingest([corpus], "local")
        seconds = {"local": t.s}
        with Timer() as t:
            runs["ray"] = on_ray.ingestor.ingest([corpus], "ray")
        seconds["ray"] = t.s
        assert not ray.is_initialized(), "the run stops the cluster it started"
        with Timer() as start:
            ray.init(num_cpus=base.ingest.ray_num_cpus, include_dashboard=False, log_to_driver=False)
        try:
            with Timer() as t:
                runs["ray_up"] = on_ray.ingestor.ingest([corpus], "ray_up")
            seconds["ray_up"] = t.s
        finally:
            ray.shutdown()
        with Timer() as t:
            runs["local_again"] = local.ingestor.ingest([corpus], "local_again")
        seconds["local_again"] = t.s

        ids, reference = index_vectors(local, "local")
        max_diff = 0.0
        for name in ("ray", "ray_up", "local_again"):  # one data directory, four collections
            other_ids, vectors = index_vectors(local, name)
            assert other_ids == ids, f"{name}: chunk ids differ from the local engine's"
            max_diff = max(max_diff, float(np.abs(vectors - reference).max()))
        assert max_diff < TOLERANCE, f"vectors differ by {max_diff}"

    chunks = runs["local"].chunks
    assert all(r.chunks == chunks for r in runs.values())
    rate = {name: chunks / s for name, s in seconds.items()}
    rate["local"] = (rate["local"] + rate.pop("local_again")) / 2
    rows = [
        {"measure": "files", "value": len(runs["local"].added)},
        {"measure": "chunks", "value": chunks},
        {"measure": "local engine chunks/s (mean of the first and last run)", "value": round(rate["local"], 1)},
        {"measure": "ray, local cluster started by the run, chunks/s", "value": round(rate["ray"], 1)},
        {"measure": "ray, cluster already up, chunks/s", "value": round(rate["ray_up"], 1)},
        {"measure": "ray (own cluster) / local", "value": round(rate["ray"] / rate["local"], 3)},
        {"measure": "ray (cluster up) / local", "value": round(rate["ray_up"] / rate["local"], 3)},
        {"measure": "local run s (first, last)", "value": f"{seconds['local']:.2f}, {seconds['local_again']:.2f}"},
        {"measure": "ray run s (own cluster)", "value": round(seconds["ray"], 2)},
        {"measure": "ray run s (cluster up)", "value": round(seconds["ray_up"], 2)},
        {"measure": "ray.init of a local cluster s", "value": round(start.s, 2)},
        {"measure": "max abs vector difference, ray vs local", "value": max_diff},
    ]
    opts = base.ingest
    notes = [
        f"corpus: data/samples + {paragraphs} SQuAD paragraphs as .md; each run parses, chunks, embeds and commits",
        f"ray: {opts.ray_num_cpus} CPUs, {opts.ray_actors} actors x {opts.ray_actor_cpus} CPU, batches of "
        f"{opts.ray_batch_size}, one Ray Data pass per {opts.ray_flush_chunks} chunks; local: batches of "
        f"{base.embedder.batch_size}",
        "one machine: Ray adds its cluster start, the actors' model loading and object-store hops, on the same "
        "cores; its actors run torch single-threaded (Ray sets OMP_NUM_THREADS to an actor's CPUs), which holds up "
        "better than one process's two threads when other work competes for the cores: read the ratios with the "
        "load above",
    ]
    write_results("ingest-ray", rows, command="make bench-ingest-ray", notes=notes)


if __name__ == "__main__":
    main()
