"""Tool calls against plain answers: time per generated token, through `xuetu serve` on the embedded model.

    .venv/bin/python benchmarks/tools.py [--rounds 5] [--engines llama.cpp transformers]

Target (issue 24): a tool call adds no more than 10% to the time per token of a plain answer of the same
length. Each round asks for a forced call (tool_choice names get_weather: decoded under the call's JSON
schema) and then a plain answer capped at the call's token count, on the same warm server; the server's own
eval_duration / eval_count (Ollama's /api/chat fields) gives the time per token of each. The median of the
rounds' ratios is reported per engine.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

from _record import record  # noqa: E402
from serve import wait_ready  # noqa: E402

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The current weather in a city.",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 7}}, "required": ["city", "unit", "days"]}}}
CITIES = ["Paris", "Beijing", "Lagos", "Lima", "Oslo", "Cairo", "Hanoi", "Quito"]


def chat(client: httpx.Client, body: dict) -> tuple[float, int]:
    r = client.post("/api/chat", json={"model": "smollm2:135m", "stream": False, **body})
    r.raise_for_status()
    out = r.json()
    return out["eval_duration"] / 1e9 / max(out["eval_count"] - 1, 1), out["eval_count"]


def one_round(client: httpx.Client, city: str) -> dict:
    ask = [{"role": "user", "content": f"What will the weather be in {city} for the next three days?"}]
    per_call, n = chat(client, {"messages": ask, "tools": [WEATHER], "options": {"temperature": 0, "num_predict": 200},
                                "tool_choice": {"type": "function", "function": {"name": "get_weather"}}})
    story = [{"role": "user", "content": f"Write a long story about a trip to {city}."}]
    per_plain, m = chat(client, {"messages": story, "options": {"temperature": 0, "num_predict": n, "seed": 1}})
    return {"call": per_call, "plain": per_plain, "call_tokens": n, "plain_tokens": m}


def run_engine(engine: str, rounds: int) -> list[dict]:
    from helpers.server import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "xuetu", "serve", "--engine", engine, "--no-access-log", "--model",
                             "smollm2:135m", "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc, "/ready")
        with httpx.Client(base_url=url, timeout=600) as client:
            one_round(client, "Rome")  # warm-up: loads the model, builds the grammar tokenizer
            out = []
            for i in range(rounds):
                r = one_round(client, CITIES[i % len(CITIES)])
                out.append(r)
                print(f"{engine:<13} round {i + 1}: call {r['call'] * 1000:.1f} ms/token ({r['call_tokens']} tokens), "
                      f"plain {r['plain'] * 1000:.1f} ms/token ({r['plain_tokens']} tokens), "
                      f"ratio {r['call'] / r['plain']:.2f}", flush=True)
            return out
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def table(results: dict[str, list[dict]], rounds: int) -> str:
    lines = ["| engine | call ms/token | plain ms/token | call / plain (median of rounds) | tokens per call |",
             "|---|---:|---:|---:|---:|"]
    verdicts = []
    for engine, rows in results.items():
        ratio = statistics.median(r["call"] / r["plain"] for r in rows)
        lines.append(f"| {engine} | {statistics.median(r['call'] for r in rows) * 1000:.1f} | "
                     f"{statistics.median(r['plain'] for r in rows) * 1000:.1f} | **{ratio:.2f}x** | "
                     f"{statistics.median(r['call_tokens'] for r in rows):.0f} |")
        verdicts.append(f"- {engine}: a forced call costs **{ratio:.2f}x** the time per token of a plain answer "
                        f"(target <= 1.10x: {'met' if ratio <= 1.10 else 'NOT met'})")
    notes = [f"- {rounds} rounds per engine after a warm-up; each round a call (tool_choice naming get_weather, "
             "decoded under its schema) then a plain answer capped at the call's length, greedy",
             "- time per token is the server's eval_duration / (eval_count - 1), from /api/chat"]
    return "\n".join(lines + [""] + verdicts + notes)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--engines", nargs="*", default=["llama.cpp", "transformers"])
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    results = {engine: run_engine(engine, args.rounds) for engine in args.engines}
    body = table(results, args.rounds)
    print("\n" + body)
    if not args.no_record:
        record("tools", "Tool calls against plain answers (issue 24: `benchmarks/tools.py`)", body)


if __name__ == "__main__":
    main()
