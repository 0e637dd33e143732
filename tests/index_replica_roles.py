"""The processes of the index-replica test (tests/rag/test_index_replicas.py), run as
``python -m tests.index_replica_roles writer|reader ...`` on one data directory, as API processes on
several machines share one index directory.

The writer ingests, updates and removes documents in ``STEPS``, one commit each, logging what each
committed generation holds; after the commits in ``AWAITED`` it waits until every reader has seen that
generation. A reader answers searches from two threads (as the API does) until the writer is done and
records what it saw; the test checks every observation against the writer's log afterwards.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
import traceback
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

COLLECTION = "kb"
# Each step: documents written (name -> version) or removed; one commit each.
STEPS: list[tuple[str, dict[str, int] | list[str]]] = [
    ("write", {"alpha": 1, "bravo": 1}),
    ("write", {"charlie": 1}),
    ("write", {"alpha": 2}),
    ("remove", ["bravo"]),
    ("write", {"delta": 1, "charlie": 2}),
    ("remove", ["alpha"]),
]
AWAITED = {0, 2, 5}  # after these commits the writer waits for the readers; the others follow at once
WAIT_LIMIT_S = 300.0
TOPICS = ["reactor", "refunds", "valves", "drones"]
SUBJECT = {"alpha": "reactor", "bravo": "refunds", "charlie": "valves", "delta": "drones"}
MARKER = re.compile(r"\b(?:alpha|bravo|charlie|delta)v\d\b")


def marker(name: str, version: int) -> str:
    return f"{name}v{version}"


def document(name: str, version: int) -> str:
    """Every sentence carries the marker, so any chunk names its document and version."""
    sections = 2 if version == 1 else 4  # an update changes the chunk count too
    parts = [f"# {name.title()} {SUBJECT[name]} notes\n"]
    for i in range(sections):
        parts.append(
            f"## Part {i + 1}\n\nThe {SUBJECT[name]} record {marker(name, version)} section {i + 1} says the "
            f"{SUBJECT[name]} team checks item {i + 1} every week. Note {marker(name, version)} keeps the "
            f"{SUBJECT[name]} schedule for part {i + 1} of the plan, with the site manager signing it.\n"
        )
    return "\n".join(parts)


def settings_for(data_dir: Path):  # -> Settings
    from rag.settings import Settings

    return Settings(data_dir=data_dir, ingest={"chunk_tokens": 48, "min_chunk_tokens": 8})


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _write_json(path: Path, data: object) -> None:
    _write_text(path, json.dumps(data))


def writer(data_dir: Path, docs_dir: Path, work: Path, readers: int) -> int:
    from docqa.services import Services

    services = Services(settings_for(data_dir))
    docs_dir.mkdir(parents=True, exist_ok=True)
    state: dict[str, int] = {}
    log = []
    for step, (kind, change) in enumerate(STEPS):
        if kind == "write":
            assert isinstance(change, dict)
            paths = []
            for name, version in change.items():
                path = docs_dir / f"{name}.md"
                path.write_text(document(name, version))
                paths.append(path)
                state[name] = version
            report = services.ingestor.ingest(paths, COLLECTION)
        else:
            report = services.ingestor.remove([docs_dir / f"{name}.md" for name in change], COLLECTION)
            for name in change:
                state.pop(name)
        if report.failed or report.generation is None:
            print(f"step {step} failed: {report.as_json()}", file=sys.stderr)
            return 2
        log.append({"generation": report.generation, "docs": dict(state), "chunks": report.total_chunks})
        _write_json(work / "writer.json", log)
        if step in AWAITED and not _await_readers(work, readers, report.generation):
            print(f"the readers did not all reach {report.generation} in {WAIT_LIMIT_S:.0f}s", file=sys.stderr)
            return 3
    (work / "done").write_text("done")
    return 0


def _await_readers(work: Path, readers: int, generation: str) -> bool:
    deadline = time.monotonic() + WAIT_LIMIT_S
    while time.monotonic() < deadline:
        seen = []
        for i in range(readers):
            try:
                seen.append((work / f"reader-{i}.seen").read_text())
            except FileNotFoundError:
                seen.append("")
        if all(s >= generation for s in seen):
            return True
        time.sleep(0.05)
    return False


def reader(data_dir: Path, work: Path, index: int) -> int:
    from docqa.services import Services

    services = Services(settings_for(data_dir))
    current = data_dir / "index" / COLLECTION / "CURRENT"
    deadline = time.monotonic() + WAIT_LIMIT_S
    while not current.exists():  # the writer's first commit
        if time.monotonic() > deadline:
            return 3
        time.sleep(0.05)
    lock = threading.Lock()
    observations: set[str] = set()
    errors: list[str] = []
    seen: list[list[str]] = [[], []]  # per thread: the generations its questions got, in order
    searches = [0]
    done = work / "done"

    def observe(thread: int) -> None:
        turn = thread
        while True:
            finishing = done.exists()  # one more round after the writer is done: the final generation
            try:
                snap = services.reader(COLLECTION)
                generation = snap.generation or ""
                counts = snap.counts()
                info = snap.info()
                docs = sorted(Path(d.path).stem for d in snap.documents())
                topic = TOPICS[turn % len(TOPICS)]
                hits = services.retriever.search(snap, f"{topic} schedule part", top_k=3).hits
                markers = sorted({m for h in hits for m in MARKER.findall(h.chunk.text)})
                observation = {
                    "generation": generation,
                    "info": [info.generation, info.documents, info.chunks],
                    "counts": counts,
                    "docs": docs,
                    "markers": markers,
                }
                with lock:
                    observations.add(json.dumps(observation, sort_keys=True))
                    searches[0] += 1
                    if not seen[thread] or seen[thread][-1] != generation:
                        seen[thread].append(generation)
                        _write_text(work / f"reader-{index}.seen", max(g for mine in seen for g in mine))
            except Exception:
                with lock:
                    errors.append(traceback.format_exc())
            turn += 2
            if finishing:
                return
            time.sleep(0.02)  # a question every 20 ms or so per thread, not a busy loop

    threads = [threading.Thread(target=observe, args=(t,)) for t in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result = {"observations": sorted(observations), "errors": errors[:5], "seen": seen, "searches": searches[0]}
    _write_json(work / f"reader-{index}.json", result)
    return 0


def main(argv: list[str]) -> int:
    role = argv[0]
    if role == "writer":
        return writer(Path(argv[1]), Path(argv[2]), Path(argv[3]), int(argv[4]))
    if role == "reader":
        return reader(Path(argv[1]), Path(argv[2]), int(argv[3]))
    raise SystemExit(f"unknown role {role}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
