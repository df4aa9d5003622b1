"""Bounded work per request: a hostile message, the most stop strings allowed, a slow request, a large upload.
None of them may hold up /health or another client's stream."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from helpers.env import home_env
from helpers.tiny import build_tiny_model

HOSTILE = "1@" * 32768  # 64 KB: the guard's leetspeak pass was quadratic in it (11 s for half of it)
STOPS = [chr(0x41 + i) * 255 + "\x01" for i in range(16)]  # the most stop strings allowed, each the longest
LONG = 600  # tokens the measured stream asks for


@pytest.fixture
def long_tiny(sec_home, tmp_path):
    """A tiny random model with a 2048-token context, so a stream lasts a few seconds."""
    with home_env(sec_home):
        from xuetu import models

        models.create("tiny-long:latest", build_tiny_model(tmp_path / "tiny-long", context=2048), progress=False)
    return "tiny-long:latest"


def stream_rate(url: str, model: str, out: dict) -> None:
    """Tokens per second of one streamed answer, from its first token to its last."""
    body = {"model": model, "messages": [{"role": "user", "content": "Tell me a story."}], "stream": True,
            "max_tokens": LONG, "temperature": 0, "stream_options": {"include_usage": True}}
    first = last = None
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=120) as r:
        assert r.status_code == 200, r.read()
        for line in r.iter_lines():
            if line.startswith("data: {") and '"content"' in line:
                last = time.perf_counter()
                first = first or last
            if '"usage"' in line and '"completion_tokens"' in line:
                import json

                out["tokens"] = json.loads(line[6:])["usage"]["completion_tokens"]
    out["rate"] = (out["tokens"] - 1) / (last - first)


def measure(url: str, model: str, others) -> float:
    result: dict = {}
    a = threading.Thread(target=stream_rate, args=(url, model, result))
    a.start()
    time.sleep(0.5)  # the stream is under way
    threads = [threading.Thread(target=f) for f in others]
    for t in threads:
        t.start()
    a.join()
    for t in threads:
        t.join()
    assert result["tokens"] == LONG, result  # greedy on a random model: no end token, the whole budget
    return result["rate"]


def test_a_hostile_message_and_maximal_stop_strings_stall_nobody(serve, long_tiny):
    s = serve("--max-batch", "4")
    replies = {}

    def hostile():
        r = httpx.post(s.url + "/v1/chat/completions", timeout=60, json={
            "model": long_tiny, "messages": [{"role": "user", "content": HOSTILE}], "max_tokens": 8})
        replies["hostile"] = r

    def stops(stop=STOPS):
        def run():
            r = httpx.post(s.url + "/api/generate", timeout=120, json={
                "model": long_tiny, "prompt": "Tell me a story.", "stream": False,
                "options": {"stop": stop, "num_predict": LONG, "temperature": 0}})
            replies["stops" if stop else "plain"] = r
        return run

    def poll_health(latencies: list[float], done: threading.Event):
        with httpx.Client(timeout=10) as c:
            while not done.is_set():
                t = time.perf_counter()
                assert c.get(s.url + "/health").status_code == 200
                latencies.append(time.perf_counter() - t)
                time.sleep(0.02)

    def measured(others, latencies: list[float]) -> float:
        """The stream's rate while `others` run, with /health polled throughout (in both runs alike)."""
        done = threading.Event()
        poller = threading.Thread(target=poll_health, args=(latencies, done))
        poller.start()
        try:
            return measure(s.url, long_tiny, others)
        finally:
            done.set()
            poller.join()

    stream_rate(s.url, long_tiny, {})  # loads the model and warms the batch
    latencies: list[float] = []
    baseline = measured([stops([])], [])  # the same load, without stop strings or a hostile message
    attacked = measured([hostile, stops()], latencies)
    assert replies["stops"].status_code == 200 and replies["plain"].status_code == 200
    assert replies["hostile"].status_code in (200, 400), replies["hostile"].text  # answered, or too long for it
    print(f"stream: {attacked:.1f} tokens/s under attack, {baseline:.1f} without ({attacked / baseline:.0%}); "
          f"/health: {len(latencies)} polls, slowest {max(latencies) * 1000:.0f} ms")
    assert len(latencies) > 20 and max(latencies) < 0.1, sorted(latencies)[-5:]
    # On 2 cores the hostile request's own bounded work (tokenizing 64 KB, refusing it) takes a core for a moment,
    # so the stream slows a little: 86-87% here, 69% once on a loaded CI machine. A stall is another order: the
    # quadratic guard pass held a 3 s stream up for 11 s, a third of the rate or less.
    assert attacked >= 0.5 * baseline, (attacked, baseline)


@pytest.mark.parametrize("where, body, limit", [
    ("/v1/chat/completions", {"stop": ["x"] * 17}, "at most 16"),
    ("/v1/chat/completions", {"stop": ["x" * 257]}, "at most 256 characters"),
    ("/api/chat", {"options": {"stop": ["x"] * 17}}, "at most 16"),
    ("/api/chat", {"options": {"stop": ["x" * 257]}}, "at most 256 characters"),
])
def test_too_many_or_too_long_stop_strings_are_refused(keyless, where, body, limit):
    r = httpx.post(keyless.url + where, timeout=60, json={
        "model": "tiny:latest", "messages": [{"role": "user", "content": "hi"}], "stream": False, **body})
    assert r.status_code == 400, r.text
    assert limit in r.text and "stop" in r.text


def test_a_request_past_the_deadline_gets_504_and_a_stream_is_ended(serve, long_tiny):
    # loaded at start: the load is not timed. 1 s: 1900 tokens take about 2 s on the fastest machine seen (900
    # tokens/s), so the deadline always comes first, and the bounds below leave room for a loaded one.
    s = serve("--request-timeout", "1", "--model", long_tiny)
    ready(s)
    body = {"model": long_tiny, "messages": [{"role": "user", "content": "Tell me a story."}], "max_tokens": 1900,
            "temperature": 0}
    httpx.post(s.url + "/v1/chat/completions", timeout=60, json={**body, "max_tokens": 8})  # the first batch warms up
    started = time.perf_counter()
    r = httpx.post(s.url + "/v1/chat/completions", timeout=60, json=body)
    assert r.status_code == 504 and "--request-timeout" in r.json()["error"]["message"]
    assert time.perf_counter() - started < 5
    started = time.perf_counter()
    with httpx.stream("POST", s.url + "/v1/chat/completions", timeout=60, json={**body, "stream": True}) as r:
        assert r.status_code == 200
        lines = list(r.iter_lines())
    assert time.perf_counter() - started < 5
    assert "data: [DONE]" not in lines  # cut, not finished
    # the cut generation left the batch: a short request is answered at once
    r = httpx.post(s.url + "/v1/chat/completions", timeout=60, json={**body, "max_tokens": 4})
    assert r.status_code == 200


def ready(s, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while httpx.get(s.url + "/ready", timeout=10).status_code != 200:
        assert time.time() < deadline, s.output()
        time.sleep(0.2)


def test_uploads_stream_to_disk(serve, sec_home):
    """A 40 MB knowledge-base upload never sits in the server's memory whole (a kind it cannot read is skipped
    after it arrived, so what is measured is the receiving)."""
    s = serve()
    assert httpx.post(s.url + "/v1/kb", json={"name": "docs"}, timeout=60).status_code == 201
    before = _peak(s.proc.pid)
    body = b"A line of plain text about nothing in particular.\n" * 800_000  # 40 MB
    r = httpx.put(s.url + "/v1/kb/docs/documents/big.unknown", content=_pieces(body), timeout=600)
    assert r.status_code == 200 and r.json()["skipped"], r.text
    assert _peak(s.proc.pid) - before < len(body) * 0.5


def _pieces(body: bytes, size: int = 1 << 20):
    for i in range(0, len(body), size):
        yield body[i:i + size]


def _peak(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0
