"""Auth, limits, queueing, cancellation, concurrency, keep-alive, metrics and logs of a live server."""

import asyncio
import json
import os
import re
import subprocess
import sys
import time

import httpx
import pytest

from helpers.env import home_env
from helpers.server import ServerProcess

CHAT = {"model": "smollm2:135m", "messages": [{"role": "user", "content": "Write a long story about a dragon."}]}


def metric(text: str, name: str, **labels) -> float:
    """Sum of a Prometheus sample's values whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        m = re.match(rf"^{re.escape(name)}(?:\{{(.*)\}})? (\S+)$", line)
        if m and all(f'{k}="{v}"' in (m.group(1) or "") for k, v in labels.items()):
            total += float(m.group(2))
    return total


def test_auth(server):
    with httpx.Client(base_url=server.url, timeout=30) as anon:
        assert anon.get("/health").status_code == 200  # liveness needs no key
        r = anon.get("/v1/models")
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
        assert r.headers["www-authenticate"] == "Bearer"
        r = anon.get("/api/tags", headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401 and r.json() == {"error": "invalid API key"}
        assert anon.get("/metrics").status_code == 401
    with server.client() as c:
        assert c.get("/v1/models").status_code == 200


def test_health_ready_metrics_move(server):
    with server.client() as c:
        assert c.get("/ready").status_code == 200
        before = c.get("/metrics").text
        r = c.post("/v1/chat/completions", json={**CHAT, "max_tokens": 5})
        assert r.status_code == 200
        c.post("/v1/chat/completions", json={"model": "nope", "messages": CHAT["messages"]})
        after = c.get("/metrics").text
    route = "/v1/chat/completions"
    assert metric(after, "xuetu_requests_total", route=route, status="200") == \
        metric(before, "xuetu_requests_total", route=route, status="200") + 1
    assert metric(after, "xuetu_requests_total", route=route, status="404") >= 1
    assert metric(after, "xuetu_generated_tokens_total", model="smollm2:135m") >= \
        metric(before, "xuetu_generated_tokens_total", model="smollm2:135m") + 5
    assert metric(after, "xuetu_time_to_first_token_seconds_count", model="smollm2:135m") > \
        metric(before, "xuetu_time_to_first_token_seconds_count", model="smollm2:135m")
    assert metric(after, "xuetu_process_rss_bytes") > 50e6
    assert metric(after, "xuetu_loaded_models") >= 1
    assert "xuetu_queue_depth" in after and "xuetu_request_duration_seconds_bucket" in after


def test_access_log_is_json_lines(server):
    with server.client() as c:
        c.get("/v1/models")
    lines = (server.home / "logs" / "access.log").read_text().strip().splitlines()
    entry = json.loads(lines[-1])
    assert entry["path"] == "/v1/models" and entry["status"] == 200 and entry["ms"] >= 0


def test_cancel_mid_stream_frees_the_slot(server):
    with server.client() as c:
        with c.stream("POST", "/v1/chat/completions", json={**CHAT, "max_tokens": 3000, "stream": True}) as r:
            for i, _ in enumerate(r.iter_lines()):
                if i > 5:
                    break  # the client goes away mid-answer
        before = metric(c.get("/metrics").text, "xuetu_generated_tokens_total", model="smollm2:135m")
        time.sleep(1.0)
        after = metric(c.get("/metrics").text, "xuetu_generated_tokens_total", model="smollm2:135m")
        assert after - before < 50  # the generation stopped, it did not run on to 3000 tokens
        assert sum(m["queue"] for m in c.get("/api/ps").json()["models"]) == 0
        t = time.perf_counter()
        assert c.post("/v1/chat/completions", json={**CHAT, "max_tokens": 3}).status_code == 200
        assert time.perf_counter() - t < 10


async def _stream(client, body) -> tuple[int, str]:
    async with client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as r:
        text = ""
        async for line in r.aiter_lines():
            if line.startswith("data: {"):
                delta = json.loads(line[6:])["choices"]
                text += delta[0]["delta"].get("content") or "" if delta else ""
        return r.status_code, text


def test_many_concurrent_streams_are_batched(server):
    prompts = [f"Tell me fact number {i} about the sea." for i in range(16)]

    async def main():
        async with httpx.AsyncClient(base_url=server.url, headers=server.headers, timeout=300) as c:
            bodies = [{"model": "tiny:latest", "messages": [{"role": "user", "content": p}], "max_tokens": 40,
                       "temperature": 0} for p in prompts]
            together = await asyncio.gather(*[_stream(c, b) for b in bodies])
            alone = [await _stream(c, b) for b in bodies[:4]]
            ps = (await c.get("/api/ps")).json()["models"]
            return together, alone, ps

    together, alone, ps = asyncio.run(main())
    assert [status for status, _ in together] == [200] * 16
    assert all(text for _, text in together)
    assert [t for _, t in together[:4]] == [t for _, t in alone]  # batching does not change greedy answers
    tiny = next(m for m in ps if m["name"] == "tiny:latest")
    assert tiny["engine"] == "transformers" and tiny["peak_batch"] > 4


def test_llama_cpp_batches_and_reuses_a_chats_prefix(server):
    """The embedded GGUF model on llama.cpp: 8 streams decode together and answer as they do alone; the next turn
    of a chat reuses the cached prefix (only its new tokens are evaluated); /api/ps and /metrics show the cache."""
    prompts = [f"Tell me fact number {i} about the moon." for i in range(8)]
    chat = [{"role": "system", "content": "You are a patient teacher. Answer in plain words."},
            {"role": "user", "content": "What is a token?"}]

    async def main():
        async with httpx.AsyncClient(base_url=server.url, headers=server.headers, timeout=300) as c:
            bodies = [{"model": "smollm2:135m", "messages": [{"role": "user", "content": p}], "max_tokens": 24,
                       "temperature": 0} for p in prompts]
            together = await asyncio.gather(*[_stream(c, b) for b in bodies])
            alone = [await _stream(c, b) for b in bodies[:3]]
            _, first = await _stream(c, {"model": "smollm2:135m", "messages": chat, "max_tokens": 24, "temperature": 0})
            before = (await c.get("/api/ps")).json()["models"]
            turn2 = chat + [{"role": "assistant", "content": first}, {"role": "user", "content": "And a vocabulary?"}]
            status, _ = await _stream(c, {"model": "smollm2:135m", "messages": turn2, "max_tokens": 8})
            after = (await c.get("/api/ps")).json()["models"]
            return together, alone, status, before, after, (await c.get("/metrics")).text

    together, alone, status, before, after, metrics = asyncio.run(main())
    assert [s for s, _ in together] == [200] * 8 and status == 200
    assert [t for _, t in together[:3]] == [t for _, t in alone]
    kv0 = next(m for m in before if m["name"] == "smollm2:135m")["kv_cache"]
    ps = next(m for m in after if m["name"] == "smollm2:135m")
    kv = ps["kv_cache"]
    assert ps["engine"] == "llama.cpp" and ps["peak_batch"] >= 4
    assert kv["slots"] == 16 and ps["context_length"] == kv["slot_context"] and kv["kv_cache_bytes"] > 0
    assert ps["size"] > kv["kv_cache_bytes"]  # weights plus cache
    reused = (kv["cached_tokens"] + kv["shared_tokens"]) - (kv0["cached_tokens"] + kv0["shared_tokens"])
    assert reused >= 30  # the whole first turn came from the cache
    # the gauge sums every loaded runner's cache: the transformers models' static caches too
    assert metric(metrics, "xuetu_kv_cache_bytes") == sum(m["kv_cache"]["kv_cache_bytes"] for m in after
                                                          if "kv_cache" in m)
    assert metric(metrics, "xuetu_kv_cached_prompt_tokens") >= kv["cached_tokens"]


def test_adapters_share_one_base(server):
    with server.client() as c:
        for model in ("tiny-lora:a", "tiny-lora:b", "tiny:latest"):
            assert c.post("/api/generate", json={"model": model, "prompt": "hi", "stream": False,
                                                 "options": {"num_predict": 2}}).status_code == 200
        loaded = [m for m in c.get("/api/ps").json()["models"] if m["name"] == "tiny:latest"]
    assert len(loaded) == 1 and loaded[0]["adapters"] == ["tiny-lora:a", "tiny-lora:b"]


@pytest.fixture(scope="module")
def tight(serve_home):
    """A server with small limits."""
    from xuetu.models import store

    with home_env(serve_home):
        if store.get("smol-hf:latest") is None:  # SmolLM2 without its GGUF: 538 MB of fp32 weights on transformers
            store.copy("smollm2:135m", "smol-hf:latest", {"formats": {"hf": "hf"}})
    s = ServerProcess(serve_home, "--max-queue", "2", "--max-body", "2KB", "--max-tokens", "20", "--max-loaded", "1",
                      "--keep-alive", "2s", "--cors", "http://app.example", "--max-memory", "300MB").wait()
    yield s
    s.stop()


def test_queue_full_gives_429_not_5xx(tight):
    body = {**CHAT, "max_tokens": 20}

    async def main():
        async with httpx.AsyncClient(base_url=tight.url, timeout=300) as c:
            await c.post("/v1/chat/completions", json={**body, "max_tokens": 1})  # load first
            return await asyncio.gather(*[c.post("/v1/chat/completions", json=body) for _ in range(8)])

    responses = asyncio.run(main())
    codes = sorted(r.status_code for r in responses)
    assert set(codes) == {200, 429} and codes.count(200) >= 2
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.json()["error"]["code"] == "queue_full" and refused.headers["retry-after"]


def test_limits(tight):
    with httpx.Client(base_url=tight.url, timeout=120) as c:
        assert c.post("/api/chat", content=b"{" + b" " * 4000 + b"}").status_code == 413
        r = c.post("/v1/chat/completions", json={**CHAT, "max_tokens": 500})
        assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] <= 20  # capped by --max-tokens


def test_no_wait_gives_503_while_loading_then_works(tight):
    with httpx.Client(base_url=tight.url, timeout=120) as c:
        c.post("/api/generate", json={"model": "tiny:latest", "prompt": "", "keep_alive": 0})
        r = c.post("/v1/chat/completions", json={**CHAT, "model": "all-minilm"}, headers={"Prefer": "wait=0"})
        # an embedder answers 400 for chat, but only once loaded: first it is loading
        assert r.status_code == 503 and r.json()["error"]["code"] == "model_loading" and r.headers["retry-after"]
        for _ in range(100):
            r = c.post("/v1/embeddings", json={"model": "all-minilm", "input": "x"}, headers={"Prefer": "wait=0"})
            if r.status_code != 503:
                break
            time.sleep(0.2)
        assert r.status_code == 200


def test_keep_alive_and_max_loaded(tight):
    with httpx.Client(base_url=tight.url, timeout=120) as c:
        c.post("/api/generate", json={"model": "tiny:latest", "prompt": "hi", "stream": False, "options": {"num_predict": 1}})
        assert [m["name"] for m in c.get("/api/ps").json()["models"]] == ["tiny:latest"]
        c.post("/api/embed", json={"model": "all-minilm", "input": "x"})
        assert [m["name"] for m in c.get("/api/ps").json()["models"]] == ["all-minilm:l6-v2"]  # --max-loaded 1
        deadline = time.time() + 10
        while c.get("/api/ps").json()["models"] and time.time() < deadline:
            time.sleep(0.5)
        assert c.get("/api/ps").json()["models"] == []  # idle past --keep-alive 2s


def test_cors(tight, server):
    pre = {"Origin": "http://app.example", "Access-Control-Request-Method": "POST"}
    with httpx.Client(base_url=tight.url) as c:
        r = c.options("/v1/chat/completions", headers=pre)
        assert r.headers["access-control-allow-origin"] == "http://app.example"
    with httpx.Client(base_url=server.url) as c:  # CORS off by default
        assert "access-control-allow-origin" not in c.get("/health", headers={"Origin": "http://app.example"}).headers


def test_memory_cap(tight):
    with httpx.Client(base_url=tight.url, timeout=120) as c:
        r = c.post("/api/chat", json={"model": "smol-hf", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 503 and "needs about 0.5 GB" in r.json()["error"] and "--max-memory" in r.json()["error"]


def test_xuetu_ps_against_the_server(server):
    with server.client() as c:
        c.post("/api/generate", json={"model": "tiny:latest", "prompt": "", "keep_alive": "1m"})
    out = subprocess.run([sys.executable, "-m", "xuetu", "ps", "--url", server.url], capture_output=True, text=True,
                         env={**os.environ, "XUETU_API_KEY": server.key}, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "tiny:latest" in out.stdout and "transformers" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "xuetu", "ps", "--url", server.url], capture_output=True, text=True,
                         env={k: v for k, v in os.environ.items() if k != "XUETU_API_KEY"}, timeout=60)
    assert bad.returncode == 1 and "HTTP 401" in bad.stderr
