"""Ingest throughput: the whole pipeline against raw ``SentenceTransformer.encode`` on the same chunk
texts in the same run, parse time per format, and a no-change re-run against the full run.

The corpus is the bundled samples (every format) plus SQuAD paragraphs as markdown files, so there
are enough chunks for a rate to mean something. ``BENCH_INGEST_DOCS`` sets the paragraph count.

    python -m bench.ingest
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from bench.common import Timer, write_results
from bench.corpus import EVAL_DIR
from docqa.services import Services
from ingest.parse import parse_file
from rag.settings import Settings
from rag.store import index_text

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "data" / "samples"
PARSE_REPEATS = 3


def build_corpus(target: Path, paragraphs: int) -> None:
    """The sample files (one of each format) and ``paragraphs`` SQuAD paragraphs as .md files."""
    target.mkdir(parents=True)
    if SAMPLES.exists():
        for f in SAMPLES.iterdir():
            if f.is_file() and f.name != "QUESTIONS.md":
                shutil.copy(f, target / f.name)
    squad = EVAL_DIR / "squad-dev" / "squad.json"
    if squad.exists():
        n = 0
        for article in json.loads(squad.read_text(encoding="utf-8"))["data"]:
            for i, para in enumerate(article["paragraphs"]):
                if n >= paragraphs:
                    return
                title = article["title"].replace("_", " ")
                (target / f"{article['title']}-{i:03d}.md").write_text(f"# {title}\n\n{para['context']}\n")
                n += 1


def parse_times(corpus: Path, settings: Settings) -> list[dict]:
    """Median parse time per file, grouped by format (the samples only: one real file per format)."""
    by_type: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for f in sorted(SAMPLES.iterdir()) if SAMPLES.exists() else []:
        if not f.is_file() or f.name == "QUESTIONS.md":
            continue
        times = []
        for _ in range(PARSE_REPEATS):
            t0 = time.perf_counter()
            doc = parse_file(f, settings.ingest)
            times.append(time.perf_counter() - t0)
        by_type[doc.doc_type].append((statistics.median(times), f.stat().st_size))
    return [
        {
            "format": kind,
            "files": len(items),
            "parse_ms": round(1000 * statistics.mean(t for t, _ in items), 1),
            "kb": round(sum(s for _, s in items) / 1024, 1),
        }
        for kind, items in sorted(by_type.items())
    ]


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    paragraphs = int(os.environ.get("BENCH_INGEST_DOCS", "400"))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        corpus = root / "corpus"
        build_corpus(corpus, paragraphs)
        settings = Settings(data_dir=root / "data")
        services = Services(settings)
        embedder = services.embedder
        embedder.warm_up()
        embedder.embed(["warm-up text"] * 8)  # first-call costs belong to neither side

        with Timer() as full:
            report = services.ingestor.ingest([corpus], "bench")
        reader = services.reader("bench")
        ids = [int(i) for i in reader.chunk_ids()]
        chunks = reader.chunks(ids)
        texts = [index_text(chunks[i].text, chunks[i].heading) for i in ids]
        with Timer() as raw:
            embedder.model.encode(texts, batch_size=settings.embedder.batch_size, normalize_embeddings=True)
        with Timer() as again:
            rerun = services.ingestor.ingest([corpus], "bench")
        assert not rerun.added and not rerun.updated, "a no-change re-run must not re-ingest"
        formats = parse_times(corpus, settings)

    pipeline_rate = report.chunks / full.s
    encode_rate = len(texts) / raw.s
    rows = [
        {"measure": "files", "value": len(report.added)},
        {"measure": "chunks", "value": report.chunks},
        {"measure": "pipeline chunks/s (parse+chunk+embed+commit)", "value": round(pipeline_rate, 1)},
        {"measure": "raw encode chunks/s (same texts)", "value": round(encode_rate, 1)},
        {"measure": "pipeline / raw encode", "value": round(pipeline_rate / encode_rate, 3)},
        {"measure": "full run s", "value": round(full.s, 2)},
        {"measure": "no-change re-run s", "value": round(again.s, 2)},
        {"measure": "re-run / full run", "value": round(again.s / full.s, 4)},
    ]
    notes = [f"corpus: data/samples + {paragraphs} SQuAD paragraphs as .md; batch {settings.embedder.batch_size}"]
    notes += [f"parse {r['format']}: {r['parse_ms']} ms for {r['kb']} KB ({r['files']} file)" for r in formats]
    write_results("ingest", rows, command="make bench-ingest", notes=notes, parse_per_format=formats)


if __name__ == "__main__":
    main()
