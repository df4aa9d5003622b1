"""Serving throughput and latency on the embedded model, for each engine, beside llama-cpp-python's own server and
llama.cpp's `llama-server --parallel 16 --cont-batching`.

For every server it runs 1, 4 and 16 concurrent streaming clients against /v1/chat/completions and
reports aggregate tokens/s, single-stream decode tokens/s, time to first token (p50, p99) and the
count of 5xx answers. Tokens are counted by re-tokenising each answer with the model's tokenizer,
so every server is counted the same way. Then a five-turn conversation, each turn sent with the whole
history, gives the time to first token per turn (prefix caching keeps the fifth near the first), and the
server's peak resident memory is read from /proc (VmHWM) after the 16-client level.

llama-server is built once per machine by benchmarks/llama_server.py (about 10 minutes on 2 cores); with
--no-build and no binary, its rows are left out and the notes say so.

    .venv/bin/python benchmarks/serve.py [--tokens 128] [--no-record] [--no-build] [--only xuetu-llama.cpp ...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

LEVELS = {1: 4, 4: 2, 16: 2}  # concurrent clients: requests each client sends in turn
TOPICS = ["the sea", "mountains", "a robot", "the moon", "rain", "a library", "trains", "bees", "winter", "music",
          "a garden", "the desert", "volcanoes", "a city at night", "friendship", "an old map"]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(round(q * (len(ordered) - 1))), len(ordered) - 1)]


async def read_stream(client: httpx.AsyncClient, body: dict) -> tuple[int, str, float | None]:
    """POST a streamed chat; (status, answer text, when its first piece came). Transport errors propagate."""
    first, text = None, ""
    async with client.stream("POST", "/v1/chat/completions", json=body) as r:
        async for line in r.aiter_lines():
            if not line.startswith("data: {"):
                continue
            choices = json.loads(line[6:]).get("choices") or []
            piece = choices[0].get("delta", {}).get("content") if choices else None
            if piece:
                first = first or time.perf_counter()
                text += piece
    return r.status_code, text, first


async def one_request(client: httpx.AsyncClient, model: str, topic: str, tokens: int, tokenizer) -> dict:
    body = {"model": model, "stream": True, "max_tokens": tokens, "temperature": 0, "repeat_penalty": 1.0,
            "messages": [{"role": "user", "content": f"Write a long essay about {topic}."}]}
    start = time.perf_counter()
    try:
        status, text, first = await read_stream(client, body)
    except httpx.TransportError:
        status, text, first = 599, "", None  # the server dropped the connection: counted with the 5xx
    end = time.perf_counter()
    n = len(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else 0
    return {"status": status, "ttft": (first or end) - start, "tokens": n,
            "decode": (n - 1) / (end - first) if first and n > 1 and end > first else 0.0}


async def conversation(url: str, model: str, turns: int = 5, tokens: int = 48) -> list[float]:
    """Time to first token of each turn of one chat, every turn sent with the whole history (greedy)."""
    questions = ["What is a language model?", "How is it trained?", "What is fine-tuning?", "And LoRA?",
                 "How do I serve it on a laptop?", "Which is cheapest?"]
    messages = [{"role": "system", "content": "You are a patient teacher. Answer in a few plain sentences."}]
    ttfts = []
    async with httpx.AsyncClient(base_url=url, timeout=600) as client:
        for q in questions[:turns]:
            messages.append({"role": "user", "content": q})
            body = {"model": model, "stream": True, "max_tokens": tokens, "temperature": 0, "messages": messages}
            start = time.perf_counter()
            try:
                _, text, first = await read_stream(client, body)
            except httpx.TransportError:  # the server dropped the connection (or died): the turns stop here
                return ttfts + [float("nan")] * (turns - len(ttfts))
            ttfts.append((first or time.perf_counter()) - start)
            messages.append({"role": "assistant", "content": text})
    return ttfts


def peak_rss(pid: int) -> int:
    """The process's peak resident memory in bytes (VmHWM), 0 where /proc has none."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


async def run_level(url: str, model: str, clients: int, per_client: int, tokens: int, tokenizer) -> dict:
    async with httpx.AsyncClient(base_url=url, timeout=900) as client:
        async def worker(i: int):
            return [await one_request(client, model, TOPICS[(i * per_client + k) % len(TOPICS)], tokens, tokenizer)
                    for k in range(per_client)]

        start = time.perf_counter()
        results = [r for batch in await asyncio.gather(*[worker(i) for i in range(clients)]) for r in batch]
        wall = time.perf_counter() - start
    ok = [r for r in results if r["status"] == 200] or [{"tokens": 0, "decode": 0.0, "ttft": 0.0}]
    return {"clients": clients, "requests": len(results), "5xx": sum(r["status"] >= 500 for r in results),
            "aggregate": sum(r["tokens"] for r in ok) / wall, "decode": statistics.median(r["decode"] for r in ok),
            "ttft_p50": percentile([r["ttft"] for r in ok], 0.5), "ttft_p99": percentile([r["ttft"] for r in ok], 0.99)}


def wait_ready(url: str, proc: subprocess.Popen, path: str, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url + path, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise TimeoutError(url)


LLAMA_SERVER = "llama.cpp llama-server --parallel 16 (anchor)"


def _try_build(llama_server):
    try:
        return llama_server.build()
    except Exception as e:  # no cmake or no index: the other rows still run
        print(f"llama-server could not be built: {e}", file=sys.stderr)
        return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--no-build", action="store_true", help="skip llama-server unless it is built already")
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()

    from helpers.server import free_port
    from transformers import AutoTokenizer

    from xuetu import models

    ref = models.pull("smollm2:135m", progress=False)
    tokenizer = AutoTokenizer.from_pretrained(ref.hf_dir)
    threads = str(os.cpu_count())
    import llama_server

    server_bin = llama_server.binary() if args.no_build else _try_build(llama_server)
    servers = {
        "xuetu-llama.cpp": ([sys.executable, "-m", "xuetu", "serve", "--engine", "llama.cpp", "--no-access-log",
                             "--model", "smollm2:135m"], "/ready", "smollm2:135m"),
        # the same without the safety guard's hold-back window, which holds the first 40 characters until checked:
        # the engine's own time to first token
        "xuetu-llama.cpp --no-guard": ([sys.executable, "-m", "xuetu", "serve", "--engine", "llama.cpp", "--no-guard",
                                        "--no-access-log", "--model", "smollm2:135m"], "/ready", "smollm2:135m"),
        "llama-cpp-python server (baseline)": ([sys.executable, "-m", "llama_cpp.server", "--model", str(ref.gguf_file),
                                                "--n_ctx", "8192", "--n_threads", threads, "--n_threads_batch", threads,
                                                # its default cancels a running stream when another request
                                                # arrives; queue instead, as xuetu does
                                                "--interrupt_requests", "False"],
                                               "/v1/models", "smollm2"),
        "xuetu-transformers": ([sys.executable, "-m", "xuetu", "serve", "--engine", "transformers", "--no-access-log",
                                "--model", "smollm2:135m"], "/ready", "smollm2:135m"),
    }
    if server_bin is not None:  # 16 slots of 4096 tokens, as xuetu's default
        servers[LLAMA_SERVER] = ([str(server_bin), "--model", str(ref.gguf_file), "--parallel", "16", "--cont-batching",
                                  "--ctx-size", str(16 * 4096), "--threads", threads, "--threads-batch", threads,
                                  "--no-webui"], "/health", "smollm2")
    results, turns, rss = {}, {}, {}
    for name, (cmd, ready, model) in servers.items():
        if args.only and name not in args.only:
            continue
        port = free_port()
        proc = subprocess.Popen(cmd + ["--host", "127.0.0.1", "--port", str(port)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(url, proc, ready)
            asyncio.run(one_request(httpx.AsyncClient(base_url=url, timeout=300), model, "warm-up", 8, tokenizer))
            results[name] = []
            for clients, per_client in LEVELS.items():
                level = asyncio.run(run_level(url, model, clients, per_client, args.tokens, tokenizer))
                results[name].append(level)
                print(f"{name:<38} clients={clients:<3} aggregate={level['aggregate']:.1f} tok/s "
                      f"decode={level['decode']:.1f} ttft p50={level['ttft_p50'] * 1000:.0f} ms "
                      f"p99={level['ttft_p99'] * 1000:.0f} ms 5xx={level['5xx']}", flush=True)
            rss[name] = peak_rss(proc.pid)
            turns[name] = asyncio.run(conversation(url, model))
            print(f"{name:<38} conversation ttft per turn (ms): " + " ".join(f"{t * 1000:.0f}" for t in turns[name])
                  + f"; peak RSS {rss[name] / 1e6:.0f} MB", flush=True)
        finally:
            proc.terminate()
            proc.wait(timeout=30)

    lines = ["| server | clients | requests | aggregate tok/s | decode tok/s (median stream) | TTFT p50 (ms) | TTFT p99 (ms) | 5xx |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, levels in results.items():
        for lv in levels:
            lines.append(f"| {name} | {lv['clients']} | {lv['requests']} | {lv['aggregate']:.1f} | {lv['decode']:.1f} | "
                         f"{lv['ttft_p50'] * 1000:.0f} | {lv['ttft_p99'] * 1000:.0f} | {lv['5xx']} |")
    lines += ["", "| server | TTFT turn 1 (ms) | turn 5 (ms) | turn 5 / turn 1 | peak RSS after 16 clients (MB) |",
              "|---|---:|---:|---:|---:|"]
    for name, t in turns.items():
        lines.append(f"| {name} | {t[0] * 1000:.0f} | {t[-1] * 1000:.0f} | {t[-1] / t[0]:.2f} | {rss[name] / 1e6:.0f} |")
    notes = [""]
    base, anchor = results.get("llama-cpp-python server (baseline)"), results.get(LLAMA_SERVER)
    cpp, tf = results.get("xuetu-llama.cpp"), results.get("xuetu-transformers")

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    if cpp and base:
        ratio = cpp[0]["decode"] / base[0]["decode"]
        notes.append(f"- llama.cpp engine single-stream decode vs llama-cpp-python's server: **{ratio:.2f}x** "
                     f"(target >= 1.0x: {verdict(ratio >= 1.0)})")
    if cpp:
        ratio = cpp[-1]["aggregate"] / cpp[0]["aggregate"]
        notes.append(f"- llama.cpp engine aggregate at 16 clients vs its 1 client: **{ratio:.2f}x** "
                     f"(target >= 3x: {verdict(ratio >= 3)})")
    if cpp and anchor:
        ratio = cpp[-1]["aggregate"] / anchor[-1]["aggregate"]
        notes.append(f"- llama.cpp engine aggregate at 16 clients vs llama-server --parallel 16: **{ratio:.2f}x** "
                     f"(target >= 0.9x: {verdict(ratio >= 0.9)})")
        ratio = anchor[-1]["aggregate"] / anchor[0]["aggregate"]
        notes.append(f"- llama-server's own aggregate at 16 clients vs its 1 client, for scale: {ratio:.2f}x")
    elif cpp:
        notes.append("- llama-server was not built here (benchmarks/llama_server.py): no anchor row")
    if "xuetu-llama.cpp" in turns:
        t = turns["xuetu-llama.cpp"]
        notes.append(f"- llama.cpp engine TTFT on turn 5 vs turn 1 of one conversation: **{t[-1] / t[0]:.2f}x** "
                     f"(target <= 1.5x: {verdict(t[-1] / t[0] <= 1.5)})")
    if tf:
        ratio = tf[-1]["aggregate"] / tf[0]["aggregate"]
        notes.append(f"- transformers engine aggregate at 16 clients vs 1 client: **{ratio:.1f}x** "
                     f"(target >= 3x: {verdict(ratio >= 3)})")
    total_5xx = sum(lv["5xx"] for levels in results.values() for lv in levels)
    notes.append(f"- 5xx answers across all runs: {total_5xx}")
    notes.append(f"- greedy, repeat_penalty 1.0, up to {args.tokens} tokens per answer; requests per level: "
                 + ", ".join(f"{c} clients x {k}" for c, k in LEVELS.items()) + "; tokens re-counted with the model's tokenizer")
    table = "\n".join(lines + notes)
    print("\n" + table)
    if not args.no_record and len(results) == len(servers) and not args.only:
        from _record import record

        record("serve", "Serving, embedded model (issues 3 and 27: `benchmarks/serve.py`)", table)


if __name__ == "__main__":
    main()
