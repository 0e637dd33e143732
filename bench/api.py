"""Load test of the HTTP API against the real stack: vLLM (CPU), `docqa serve` in its own process, the
sample corpus indexed. N conversations run concurrently for a bounded time, each asking the sample
questions over ``POST /v1/chat`` (SSE) with follow-ups by conversation id, as the widget does.

Reports requests per second, p50/p99 time to the sources (the first thing a user sees: in verify mode the
widget shows them with "Checking the answer…" while the answer is drafted and checked), to first token and
to last token, and errors (only 429s,
answered by waiting for Retry-After, are acceptable). The baseline, in the same run, is the answer
pipeline called in-process one question at a time: the ratios show what HTTP, auth and SSE add, and how
throughput scales with concurrent conversations on this machine.

    python -m bench.api                                   # concurrency 1 and 4, 60 s each
    BENCH_API_CONCURRENCY=1,2,8 BENCH_API_SECONDS=30 python -m bench.api
    BENCH_API_SHARED_KEY=1 python -m bench.api            # every conversation on one widget key (rate limits)
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.common import median, percentile, write_results
from docqa.services import Services
from rag.errors import DocqaError
from rag.settings import Settings, load_settings
from rag.types import Question

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "data" / "samples"
QUESTIONS = [REPO / "data" / "QUESTIONS.md", SAMPLES / "QUESTIONS.md"]
ORIGIN = "https://bench.example.com"
TURNS_PER_CONVERSATION = 3  # then a new conversation, as a visitor with a few questions would
START_TIMEOUT_S = 180
DRAIN_TIMEOUT_S = 300  # requests in flight when the window closes may finish within this


def sample_questions() -> list[str]:
    path = next(p for p in QUESTIONS if p.exists())
    rows = re.findall(r"^\| \d+ \| ([^|]+?) \|", path.read_text(), flags=re.MULTILINE)
    if not rows:
        raise SystemExit(f"no questions found in {path}")
    return rows


@dataclass
class Sample:
    status: int
    sources_s: float | None = None  # the first visible content: the passages found
    ttft_s: float | None = None
    ttlt_s: float | None = None
    error: str | None = None


@dataclass
class Run:
    mode: str
    concurrency: int
    seconds: float
    samples: list[Sample] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def ok(self) -> list[Sample]:
        return [s for s in self.samples if s.status == 200 and s.error is None]

    @property
    def rps(self) -> float:
        return len(self.ok) / self.elapsed_s if self.elapsed_s else 0.0

    def ttft_p50_ms(self) -> float | None:
        ttft = [s.ttft_s * 1000 for s in self.ok if s.ttft_s is not None]
        return median(ttft) if ttft else None

    def row(self, baseline: Run | None) -> dict:
        ok = self.ok
        limited = [s for s in self.samples if s.status == 429]
        errors = [s for s in self.samples if s.status != 429 and (s.status != 200 or s.error is not None)]
        sources = [s.sources_s * 1000 for s in ok if s.sources_s is not None]
        ttft = [s.ttft_s * 1000 for s in ok if s.ttft_s is not None]
        ttlt = [s.ttlt_s * 1000 for s in ok if s.ttlt_s is not None]
        rps = self.rps
        base_ttft = baseline.ttft_p50_ms() if baseline else None
        return {
            "mode": self.mode,
            "concurrency": self.concurrency,
            "window_s": round(self.seconds),
            "answers": len(ok),
            "req_per_s": round(rps, 3),
            "rps_vs_baseline": round(rps / baseline.rps, 2) if baseline and baseline.rps else None,
            "ttft_p50_vs_baseline": round(self.ttft_p50_ms() / base_ttft, 2) if base_ttft and ttft else None,
            "sources_p50_ms": round(median(sources)) if sources else None,
            "sources_p99_ms": round(percentile(sources, 99)) if sources else None,
            "ttft_p50_ms": round(median(ttft)) if ttft else None,
            "ttft_p99_ms": round(percentile(ttft, 99)) if ttft else None,
            "ttlt_p50_ms": round(median(ttlt)) if ttlt else None,
            "ttlt_p99_ms": round(percentile(ttlt, 99)) if ttlt else None,
            "rate_limited_429": len(limited),
            "errors": len(errors),
            "error_examples": sorted({f"{s.status}: {s.error}"[:160] for s in errors})[:3],
        }


async def ask(client: httpx.AsyncClient, key: str, question: str, conversation_id: str | None) -> tuple[Sample, str]:
    """One question over SSE, timed the way a user sees it."""
    started = time.perf_counter()
    body = {"question": question, "collection": "support", "conversation_id": conversation_id}
    headers = {"Authorization": f"Bearer {key}", "Origin": ORIGIN, "Accept": "text/event-stream"}
    sample = Sample(0)
    new_id = conversation_id
    try:
        async with client.stream("POST", "/v1/chat", json=body, headers=headers) as response:
            sample.status = response.status_code
            if response.status_code != 200:
                text = (await response.aread()).decode(errors="replace")
                sample.error = text[:200]
                if response.status_code == 429:
                    await asyncio.sleep(float(response.headers.get("retry-after", "1")))
                return sample, new_id
            event = None
            async for line in response.aiter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:") and event:
                    if event == "meta":
                        new_id = json.loads(line[5:])["conversation_id"]
                    elif event == "sources" and sample.sources_s is None:
                        sample.sources_s = time.perf_counter() - started
                    elif event == "token" and sample.ttft_s is None:
                        sample.ttft_s = time.perf_counter() - started
                    elif event == "final":
                        sample.ttlt_s = time.perf_counter() - started
                    elif event == "error":
                        sample.error = line[5:].strip()
            if sample.ttlt_s is None and sample.error is None:
                sample.error = "stream ended without a final event"
    except httpx.HTTPError as exc:
        sample.error = f"{type(exc).__name__}: {exc}"
    return sample, new_id


async def conversation(
    client: httpx.AsyncClient, key: str, questions: list[str], offset: int, deadline: float, out: list[Sample]
) -> None:
    conversation_id, turn, i = None, 0, offset
    while time.monotonic() < deadline:
        sample, conversation_id = await ask(client, key, questions[i % len(questions)], conversation_id)
        out.append(sample)
        i += 1
        turn += 1
        if turn >= TURNS_PER_CONVERSATION or sample.status != 200:
            conversation_id, turn = None, 0


async def load(base_url: str, keys: list[str], concurrency: int, seconds: float, questions: list[str]) -> Run:
    run = Run("API /v1/chat (SSE)", concurrency, seconds)
    limits = httpx.Limits(max_connections=concurrency + 2)
    timeout = httpx.Timeout(DRAIN_TIMEOUT_S, connect=10)
    async with httpx.AsyncClient(base_url=base_url, timeout=timeout, limits=limits) as client:
        started = time.monotonic()
        deadline = started + seconds
        await asyncio.gather(
            *(
                conversation(client, keys[n % len(keys)], questions, n * 5, deadline, run.samples)
                for n in range(concurrency)
            )
        )
        run.elapsed_s = time.monotonic() - started
    return run


def in_process(services: Services, questions: list[str], seconds: float) -> Run:
    """The baseline: the same conversations through the answer pipeline in this process, no HTTP, no auth."""
    run = Run("pipeline in-process (baseline)", 1, seconds)
    history: list[dict[str, str]] = []
    i = 0
    started = time.monotonic()
    while time.monotonic() < started + seconds:
        question = questions[i % len(questions)]
        t0 = time.perf_counter()
        sample = Sample(200)
        try:
            for event in services.pipeline.stream(Question(question, "support", history=list(history))):
                if event["event"] == "sources" and sample.sources_s is None:
                    sample.sources_s = time.perf_counter() - t0
                elif event["event"] == "token" and sample.ttft_s is None:
                    sample.ttft_s = time.perf_counter() - t0
                elif event["event"] == "final":
                    sample.ttlt_s = time.perf_counter() - t0
                    history += [
                        {"role": "user", "content": question},
                        {"role": "assistant", "content": event["answer"].answer or ""},
                    ]
        except DocqaError as exc:
            sample.status, sample.error = 500, str(exc)
        run.samples.append(sample)
        i += 1
        if len(history) >= 2 * TURNS_PER_CONVERSATION:
            history = []
    run.elapsed_s = time.monotonic() - started
    return run


async def warm_up(base_url: str, key: str, question: str) -> None:
    """One untimed question: the server loads the index and the tokenizer."""
    async with httpx.AsyncClient(base_url=base_url, timeout=DRAIN_TIMEOUT_S) as client:
        sample, _ = await ask(client, key, question, None)
    if sample.error:
        raise SystemExit(f"warm-up question failed: {sample.status} {sample.error}")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_api(
    settings: Settings, data_dir: Path, log: Path, overrides: dict[str, str] | None = None
) -> tuple[subprocess.Popen, str]:
    """`docqa serve` in its own process group (so the load generator does not share its interpreter);
    ``overrides``: DOCQA_* variables for this process only (a variant's settings)."""
    port = free_port()
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "DOCQA_DATA_DIR": str(data_dir),
        "DOCQA_LLM_BASE_URL": settings.llm.base_url,
        "DOCQA_LOG_LEVEL": "WARNING",
        **(overrides or {}),
    }
    with open(log, "wb") as fh:
        process = subprocess.Popen(
            [sys.executable, "-m", "docqa.cli.main", "serve", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"`docqa serve` exited with {process.returncode}:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    stop(process)
    raise SystemExit(f"the API did not become ready within {START_TIMEOUT_S} s:\n{log.read_text()[-2000:]}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def model_server(settings: Settings, stack: ExitStack) -> bool:
    """Use the model server if it already answers; otherwise start one for the run (stopped at the end)."""
    from docqa.model_server import ModelServer, is_ready, prepare

    if is_ready(settings):
        print(f"using the model server at {settings.llm.base_url}", flush=True)
        return False
    print("starting the model server (vLLM, CPU) …", flush=True)
    prepare(settings)
    # Without prefix caching: the rows repeat the same questions, and a warm cache would favour later rows.
    fair = settings.with_overrides(model__extra_args=[*settings.model.extra_args, "--no-enable-prefix-caching"])
    stack.enter_context(ModelServer(fair))  # started and ready, stopped when the stack closes
    return True


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    levels = [int(x) for x in os.environ.get("BENCH_API_CONCURRENCY", "1,4").split(",")]
    seconds = float(os.environ.get("BENCH_API_SECONDS", "60"))
    shared_key = os.environ.get("BENCH_API_SHARED_KEY") == "1"
    questions = sample_questions()
    base = load_settings()
    load_at_start = round(os.getloadavg()[0], 2)

    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="docqa-bench-api-") as tmp:
        own_server = model_server(base, stack)
        data = Path(tmp) / "data"
        data.mkdir()
        if base.models_dir.exists():  # the chat tokenizer, so prompts are fitted exactly as in production
            (data / "models").symlink_to(base.models_dir.resolve())
        settings = base.with_overrides(data_dir=data)
        from docqa.api.keys import KeyStore
        from docqa.services import build

        print("indexing the sample corpus …", flush=True)
        files = sorted(p for p in SAMPLES.iterdir() if p.is_file() and p.name != "QUESTIONS.md")
        services = build(settings)
        report = services.ingestor.ingest(files, "support", prune=False)
        if not report.ok:
            raise SystemExit(f"ingest failed: {report.failed}")
        store = KeyStore.for_settings(settings)
        keys = [
            store.create("widget", collections=["support"], origins=[ORIGIN])[0]
            for _ in range(1 if shared_key else max(levels))
        ]
        process, url = start_api(settings, data, Path(tmp) / "api.log")
        stack.callback(stop, process)

        asyncio.run(warm_up(url, keys[0], questions[0]))
        services.pipeline.ask(Question(questions[0], "support"))  # the same warm-up in this process
        print(f"baseline: the pipeline in-process for {seconds:.0f} s …", flush=True)
        runs = [in_process(services, questions, seconds)]
        for level in levels:
            print(f"{level} concurrent conversation(s) for {seconds:.0f} s …", flush=True)
            runs.append(asyncio.run(load(url, keys, level, seconds, questions)))
        rows = [r.row(runs[0]) for r in runs]
        api_settings = settings.api
    notes = [
        f"{len(questions)} sample questions in rotation, {TURNS_PER_CONVERSATION} turns per conversation "
        "(follow-ups by conversation_id, so later turns also pay for the model's question rewrite)",
        "time to sources / first token / last token: from sending the request to the `sources` (the first "
        "visible content) / the first `token` / the `final` SSE event; in verify mode the first token is the "
        "checked answer, whole",
        "baseline: the same conversations through the answer pipeline in the bench process (no HTTP, no auth, "
        "one at a time); *_vs_baseline are ratios to it in this run",
        "vLLM started by the bench without prefix caching (rows repeat questions)"
        if own_server
        else "vLLM was already running: its prefix cache may favour the later rows",
        f"keys: {'one widget key shared by all conversations' if shared_key else 'one widget key per conversation'}"
        f"; rate limit {api_settings.rate_limit_per_minute}/min, burst {api_settings.rate_burst}",
        "requests in flight when the window closes are allowed to finish and are counted",
        f"1-min load average at the start: {load_at_start} (other work on the machine slows every figure)",
    ]
    write_results("api", rows, command="make bench-api", notes=notes, concurrency=levels, window_s=seconds)
    bad = sum(r["errors"] for r in rows)
    if bad:
        raise SystemExit(f"{bad} request(s) failed with something other than 429")


if __name__ == "__main__":
    main()
