"""The answering path's two costs: retrieval latency at 10k and 100k chunks, and generation speed of
vLLM against in-process transformers on the same model and prompts at 1, 8 and 32 concurrent requests.

Retrieval: a real collection (SQLite docstore, FAISS flat, BM25) of synthetic chunks (real sentences,
clustered vectors) searched through the Retriever, query embedding included.
Generation: a vLLM server of our own (docqa.model_server.ModelServer on a free port) and the
TransformersGenerator in this process, both streaming; time to first token per request and generated
tokens per second over the whole batch. The in-process backend generates one request at a time (its
lock), which is what docqa's transformers mode does under concurrent load.

    python -m bench.answer
    BENCH_RETRIEVAL_SIZES=10000 BENCH_CONCURRENCY=1,8 python -m bench.answer
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.common import Timer, median, percentile, write_results
from bench.corpus import EVAL_DIR, clustered_vectors, synthetic_texts
from rag.settings import Settings
from rag.types import ChunkDraft

REPO = Path(__file__).resolve().parents[1]
CHUNKS_PER_DOC = 10
SEARCHES = 100
MAX_TOKENS = 64


# -- retrieval -----------------------------------------------------------------------------------


def build_collection(settings: Settings, n: int, dim: int, model_id: str) -> None:
    from rag.store import CollectionWriter

    texts = synthetic_texts(n, seed=3)
    vectors = clustered_vectors(n, dim, seed=3)
    with CollectionWriter(settings, "bench", model_id=model_id, dim=dim, rebuild=True) as writer:
        for d, start in enumerate(range(0, n, CHUNKS_PER_DOC)):
            part = texts[start : start + CHUNKS_PER_DOC]
            writer.put_document(
                path=f"/bench/doc{d:06d}.txt",
                content_hash=f"h{d:06d}",
                doc_type="txt",
                title=None,
                size=sum(len(t) for t in part),
                mtime=0.0,
                chunks=[ChunkDraft(text=t, n_tokens=len(t.split())) for t in part],
                text_hashes=[f"t{start + i}" for i in range(len(part))],
                vectors=vectors[start : start + len(part)],
            )
        writer.commit(settings.retrieval)


def retrieval_rows(sizes: list[int]) -> list[dict]:
    from docqa.services import Services

    rows = []
    questions = [" ".join(t.split()[2:10]) for t in synthetic_texts(SEARCHES, seed=11)]
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(data_dir=Path(tmp))
            services = Services(settings)
            embedder = services.embedder
            with Timer() as build:
                build_collection(settings, n, embedder.dim, embedder.model_id)
            reader = services.reader("bench")
            services.retriever.search(reader, "warm up")  # model and index load are not per-query costs
            parts: dict[str, list[float]] = {"total": [], "embed_ms": [], "dense_ms": [], "bm25_ms": []}
            for q in questions:
                result = services.retriever.search(reader, q)
                parts["total"].append(result.ms)
                for key in ("embed_ms", "dense_ms", "bm25_ms"):
                    parts[key].append(result.timings.get(key, 0.0))
            rows.append(
                {
                    "chunks": n,
                    "build_s": round(build.s, 1),
                    "p50_ms": round(median(parts["total"]), 1),
                    "p99_ms": round(percentile(parts["total"], 99), 1),
                    "embed_p50_ms": round(median(parts["embed_ms"]), 1),
                    "dense_p50_ms": round(median(parts["dense_ms"]), 2),
                    "bm25_p50_ms": round(median(parts["bm25_ms"]), 2),
                }
            )
            print(rows[-1], flush=True)
    return rows


# -- generation ----------------------------------------------------------------------------------


def prompts(count: int) -> list[list[dict]]:
    """Grounded questions from SQuAD, in docqa's own prompt format."""
    from rag.prompting import SYSTEM_PROMPT

    squad = json.loads((EVAL_DIR / "squad-dev" / "squad.json").read_text(encoding="utf-8"))
    out = []
    for article in squad["data"]:
        for para in article["paragraphs"]:
            qa = para["qas"][0]
            user = f"Sources:\n[1] ({article['title']})\n{para['context']}\n\nQuestion: {qa['question']}"
            out.append([{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}])
            if len(out) == count:
                return out
    return out


def run_batch(generator, batch: list[list[dict]], count_tokens) -> dict:
    """All requests at once (one thread each); TTFT per request, tokens/s over the batch."""

    def one(messages: list[dict]) -> tuple[float, int]:
        t0 = time.perf_counter()
        first = None
        pieces = []
        for piece in generator.stream(messages, max_tokens=MAX_TOKENS, temperature=0.0):
            if first is None:
                first = time.perf_counter() - t0
            pieces.append(piece)
        return (first if first is not None else time.perf_counter() - t0), count_tokens("".join(pieces))

    with Timer() as wall, ThreadPoolExecutor(max_workers=len(batch)) as pool:
        results = list(pool.map(one, batch))
    ttfts = [r[0] for r in results]
    tokens = sum(r[1] for r in results)
    return {
        "tokens": tokens,
        "tokens_per_s": round(tokens / wall.s, 1),
        "ttft_p50_s": round(median(ttfts), 3),
        "ttft_max_s": round(max(ttfts), 3),
        "wall_s": round(wall.s, 2),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def generation_rows(levels: list[int], notes: list[str]) -> list[dict]:
    from docqa.model_server import ModelServer, prepare, venv_python
    from rag.generation import OpenAIGenerator, TransformersGenerator, load_chat_tokenizer

    checkpoint = prepare(Settings(data_dir=REPO / ".cache"))  # converted once, shared with the tests
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        settings = Settings(
            data_dir=Path(tmp),
            model={"source": str(checkpoint), "port": port, "max_model_len": 2048, "venv": REPO / ".venv-vllm"},
            # 32 requests at once on 2 cores: the last first token can take minutes, which is the measurement.
            llm={
                "base_url": f"http://127.0.0.1:{port}/v1",
                "temperature": 0.0,
                "max_tokens": MAX_TOKENS,
                "timeout_s": 900,
            },
        )
        tokenizer = load_chat_tokenizer(settings)

        def count_tokens(text: str) -> int:
            return len(tokenizer.encode(text, add_special_tokens=False))

        batches = {n: prompts(n) for n in levels}
        rows = []
        local = TransformersGenerator(settings)
        local.warm_up()
        local.chat(batches[levels[0]][0], max_tokens=4)
        for n in levels:
            rows.append(
                {"backend": "transformers (in-process)", "concurrent": n, **run_batch(local, batches[n], count_tokens)}
            )
            print(rows[-1], flush=True)
        del local
        if not venv_python(settings).exists():
            notes.append(f"vLLM skipped: {venv_python(settings)} missing (make setup creates it)")
            return rows
        server = ModelServer(settings, adapters={})
        try:
            with Timer() as startup:
                server.start()
                server.wait_ready()
            notes.append(f"vLLM server start to ready: {startup.s:.0f} s")
            remote = OpenAIGenerator(settings.llm, settings.llm_model_name)
            remote.chat(batches[levels[0]][0], max_tokens=4)
            for n in levels:
                rows.append({"backend": "vLLM (HTTP)", "concurrent": n, **run_batch(remote, batches[n], count_tokens)})
                print(rows[-1], flush=True)
        finally:
            server.stop()
    return rows


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sizes = [int(s) for s in os.environ.get("BENCH_RETRIEVAL_SIZES", "10000,100000").split(",") if s]
    levels = [int(s) for s in os.environ.get("BENCH_CONCURRENCY", "1,8,32").split(",") if s]
    notes = [
        f"retrieval: default settings (hybrid, FAISS flat, candidate depth {Settings().retrieval.candidate_depth}), "
        f"{SEARCHES} searches, query embedding included",
        f"generation: SmolLM2-135M-Instruct, greedy, max {MAX_TOKENS} new tokens, SQuAD prompts in docqa's format",
    ]
    retrieval = retrieval_rows(sizes) if sizes else []
    generation = generation_rows(levels, notes) if levels else []
    write_results("answer", retrieval, command="make bench-answer", notes=notes, tables={"generation": generation})


if __name__ == "__main__":
    main()
