"""A small OpenAI-compatible provider on 127.0.0.1 that misbehaves on demand, for the remote engine's tests.

The request's model name picks the behaviour:
    echo        streams "You said: <last user message>" word by word, with usage
    tools       streams a call of the first tool offered, arguments in two fragments
    slow        streams a word every `slow_interval` seconds, 60 words; notes when the client hangs up
    malformed   one good chunk, then a line that is not JSON
    cut         one good chunk, then the connection closes with no finish
    hang        sends nothing for `hang_seconds`, then answers as echo
    stamp       max_tokens chunks, one every `stamp_interval` seconds, each "<perf_counter_ns when sent>|" written
                in the letters a-p for the hex digits (a number would be masked as personal data by a guard)
                (for benchmarks/remote.py: the clock is the machine's, so a client measures each chunk's delay)
Any model first answers with the statuses queued in `fail[model]` (with Retry-After when `retry_after` is set).
Requests need `Authorization: Bearer <key>` when `key` is set. /v1/embeddings answers with vectors made from a
hashed bag of words of each input, and counts the inputs it embedded.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from helpers.server import free_port


class FakeAPI:
    def __init__(self, key: str | None = None):
        self.key = key
        self.requests: list[dict] = []
        """Each request: {"path", "body", "auth"}."""
        self.fail: dict[str, list[int]] = {}
        self.retry_after: float | None = None
        self.slow_interval = 0.2
        self.stamp_interval = 0.005
        self.hang_seconds = 5.0
        self.reject_stream_options = False
        """Answer 400 to a request with stream_options, as some older servers do."""
        self.disconnects = 0
        self.embedded_inputs = 0
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path.rstrip("/") == "/v1/models":
                    return fake._json(self, 200, {"object": "list", "data": [{"id": "echo", "object": "model"}]})
                fake._json(self, 404, {"error": {"message": f"no route {self.path}"}})

            def do_POST(self):
                size = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(size) or b"{}")
                fake.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
                fake._route(self, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "FakeAPI":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def chat_requests(self) -> list[dict]:
        return [r for r in self.requests if r["path"].endswith("/chat/completions")]

    # -- replies ---------------------------------------------------------------------------------
    def _json(self, h, status: int, obj: dict, headers: dict | None = None) -> None:
        data = json.dumps(obj).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    def _route(self, h, body: dict) -> None:
        if self.key and h.headers.get("Authorization") != f"Bearer {self.key}":
            return self._json(h, 401, {"error": {"message": "Incorrect API key provided", "code": "invalid_api_key"}})
        model = str(body.get("model"))
        if self.fail.get(model):
            status = self.fail[model].pop(0)
            headers = {"Retry-After": f"{self.retry_after:g}"} if self.retry_after is not None else {}
            return self._json(h, status, {"error": {"message": f"fake {status}"}}, headers)
        if h.path.endswith("/embeddings"):
            return self._embeddings(h, body)
        if not h.path.endswith("/chat/completions"):
            return self._json(h, 404, {"error": {"message": f"no route {h.path}"}})
        if model not in ("echo", "tools", "slow", "malformed", "cut", "stamp", "hang"):
            return self._json(h, 404, {"error": {"message": f"The model `{model}` does not exist"}})
        if self.reject_stream_options and "stream_options" in body:
            return self._json(h, 400, {"error": {"message": "Unrecognized request argument: stream_options"}})
        if model == "hang":
            time.sleep(self.hang_seconds)
        self._stream(h, model, body)

    def _embeddings(self, h, body: dict) -> None:
        inputs = body.get("input")
        inputs = [inputs] if isinstance(inputs, str) else list(inputs or [])
        self.embedded_inputs += len(inputs)
        data = [{"object": "embedding", "index": i, "embedding": _vector(t)} for i, t in enumerate(inputs)]
        self._json(h, 200, {"object": "list", "data": data, "model": body.get("model"),
                            "usage": {"prompt_tokens": sum(len(t) for t in inputs), "total_tokens": 0}})

    def _stream(self, h, model: str, body: dict) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Connection", "close")
        h.end_headers()
        h.close_connection = True
        words, calls = self._answer(model, body)
        try:
            if model == "stamp":
                words = []
                for i in range(int(body.get("max_tokens") or 16)):
                    if i:
                        time.sleep(self.stamp_interval)
                    self._event(h, {"choices": [{"index": 0, "delta": {"content": stamp(time.perf_counter_ns())},
                                                 "finish_reason": None}]})
            for i, word in enumerate(words):
                if model == "slow" and i:
                    time.sleep(self.slow_interval)
                self._event(h, {"choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]})
                if model == "malformed":
                    h.wfile.write(b"data: {not json\n\n")
                    return
                if model == "cut":
                    return
            for piece in calls:
                self._event(h, {"choices": [{"index": 0, "delta": {"tool_calls": [piece]}, "finish_reason": None}]})
            finish = "tool_calls" if calls else "stop"
            self._event(h, {"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
            if (body.get("stream_options") or {}).get("include_usage"):
                self._event(h, {"choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": len(words),
                                                         "total_tokens": 11 + len(words)}})
            h.wfile.write(b"data: [DONE]\n\n")
            h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.disconnects += 1

    def _event(self, h, obj: dict) -> None:
        h.wfile.write(b"data: " + json.dumps({"id": "fake", "object": "chat.completion.chunk", **obj}).encode()
                      + b"\n\n")
        h.wfile.flush()

    def _answer(self, model: str, body: dict) -> tuple[list[str], list[dict]]:
        if model == "tools" and body.get("tools"):
            name = body["tools"][0]["function"]["name"]
            return [], [{"index": 0, "id": "call_fake1", "type": "function",
                         "function": {"name": name, "arguments": '{"city": '}},
                        {"index": 0, "function": {"arguments": '"Paris"}'}}]
        if model == "slow":
            return [f"w{i} " for i in range(60)], []
        last = next((m.get("content") or "" for m in reversed(body.get("messages") or [])
                     if m.get("role") == "user"), "")
        return [w + " " for w in f"You said: {last}".split()], []


def _vector(text: str, dim: int = 64) -> list[float]:
    """A hashed bag of words: texts that share words point the same way, so dense retrieval means something."""
    v = [0.0] * dim
    for word in re.findall(r"\w+", text.lower()):
        v[int(hashlib.sha256(word.encode()).hexdigest(), 16) % dim] += 1.0
    return v


LETTERS = str.maketrans("0123456789abcdef", "abcdefghijklmnop")


def stamp(ns: int) -> str:
    return f"{ns:x}".translate(LETTERS) + "|"


def read_stamps(text: str) -> list[int]:
    return [int(m.translate(str.maketrans("abcdefghijklmnop", "0123456789abcdef")), 16)
            for m in re.findall(r"([a-p]{8,})\|", text)]
