"""A real HTTP server that speaks the part of vLLM's OpenAI API docqa uses (``GET /v1/models`` and
``POST /v1/chat/completions``, streamed or plain) with a scripted answer, for what a real model server
cannot be made to do on demand: drop the connection in the middle of an answer, or fail with a 5xx. It can
also report a tokenizer directory as the served model's ``root``, as vLLM reports the path it loaded. A
request without ``stream`` (the follow-up rewrite) gets the whole answer as one JSON completion. Token counts
come as vLLM gives them: on every plain completion, and on a stream that asks (``stream_options.include_usage``)
in a last chunk without choices; a prompt's "tokens" are its words here. ``delay`` seconds pass before each
piece (and before a plain completion), as a slow model would take."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # chunked responses: a dropped connection is an incomplete body
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _json(self, body: dict) -> None:
        raw = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self) -> None:
        card: dict[str, Any] = {"id": self.server.model, "object": "model", "created": 0, "owned_by": "fake"}
        if self.server.root is not None:
            card["root"] = self.server.root
        self._json({"object": "list", "data": [card]})

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _usage(self, request: dict) -> dict[str, int]:
        prompt = sum(len(str(m.get("content", "")).split()) for m in request.get("messages", []))
        return {"prompt_tokens": prompt, "completion_tokens": len(self.server.pieces),
                "total_tokens": prompt + len(self.server.pieces)}

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        request = json.loads(self.rfile.read(length))
        self.server.requests.append(request)
        if self.server.status != 200:
            raw = json.dumps({"error": {"message": "scripted failure", "code": self.server.status}}).encode()
            self.send_response(self.server.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)
            return
        if not request.get("stream") and not self.server.drop:  # a plain completion (the follow-up rewrite)
            time.sleep(self.server.delay)
            message = {"role": "assistant", "content": "".join(self.server.pieces)}
            self._json({"id": "c", "object": "chat.completion", "created": 0, "model": self.server.model,
                        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                        "usage": self._usage(request)})
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.server.gate.wait(timeout=120)  # a reply starts only once the test opens the gate
        for piece in self.server.pieces:
            time.sleep(self.server.delay)
            delta = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": self.server.model,
                     "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
            self._chunk(f"data: {json.dumps(delta)}\n\n".encode())
        if self.server.drop:
            self.close_connection = True  # no terminating chunk: the client reads a truncated body
            return
        if (request.get("stream_options") or {}).get("include_usage"):
            last = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": self.server.model,
                    "choices": [], "usage": self._usage(request)}
            self._chunk(f"data: {json.dumps(last)}\n\n".encode())
        self._chunk(b"data: [DONE]\n\n")
        self._chunk(b"")


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    model: str
    pieces: list[str]
    drop: bool
    root: str | None
    status: int
    delay: float
    gate: threading.Event
    requests: list[dict]


@contextmanager
def fake_model_server(
    pieces: Sequence[str],
    *,
    drop: bool = False,
    model: str = "docqa-base",
    root: str | None = None,
    status: int = 200,
    port: int = 0,
    delay: float = 0.0,
    gate: threading.Event | None = None,
) -> Iterator[_Server]:
    """Serve on 127.0.0.1 (``port``, else a free one); the base URL is ``base_url(server)``. ``status``
    other than 200: every chat request is answered with it (and an OpenAI-style error body). ``gate``: a
    streamed reply sends nothing until it is set (a model still reading its prompt)."""
    server = _Server(("127.0.0.1", port), _Handler)
    server.model, server.pieces, server.drop, server.root, server.requests = model, pieces, drop, root, []
    server.status, server.delay = status, delay
    if gate is None:
        gate = threading.Event()
        gate.set()
    server.gate = gate
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def base_url(server: _Server) -> str:
    return f"http://127.0.0.1:{server.server_port}/v1"
