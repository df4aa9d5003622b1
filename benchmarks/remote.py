"""What `xuetu serve` adds when it proxies a remote model: per-chunk delay and time to first token, against
calling the same upstream directly (the named baseline), in the same run.

The upstream is a real HTTP provider on loopback (tests/helpers/fakeapi.py, model "stamp") that streams chunks
every few milliseconds, each carrying the moment it was sent (perf_counter_ns: one clock for the whole machine).
The client reads each chunk's delay on arrival. Rounds alternate direct, proxied without guards, and proxied with
the default safety guards (their hold-back window delays text on purpose; benchmarks/safety.py measures it), and
the medians over all chunks are compared. Targets: the proxy adds < 5 ms per chunk and < 20 ms to the first token.

    .venv/bin/python benchmarks/remote.py [--chunks 100] [--rounds 5] [--interval-ms 5] [--no-record]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

from helpers.fakeapi import read_stamps  # noqa: E402

KEY = "sk-bench-remote"


def one_stream(base: str, model: str, chunks: int, headers: dict) -> tuple[float, list[float]]:
    """(time to first token, each chunk's delay) in seconds, for one streamed answer."""
    body = {"model": model, "stream": True, "max_tokens": chunks, "temperature": 0,
            "messages": [{"role": "user", "content": "go"}]}
    delays, first = [], None
    start = time.perf_counter_ns()
    pending = ""  # a guard's hold-back releases text by characters: a stamp may arrive in two pieces
    with httpx.stream("POST", base + "/chat/completions", json=body, headers=headers, timeout=60) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            now = time.perf_counter_ns()
            if not line.startswith("data: {"):
                continue
            choices = json.loads(line[6:]).get("choices") or [{}]
            pending += (choices[0].get("delta") or {}).get("content") or ""
            done, _, pending = pending.rpartition("|")
            for sent in read_stamps(done + "|" if done else ""):
                first = first if first is not None else now
                delays.append((now - sent) / 1e9)
    if first is None or len(delays) != chunks:
        raise RuntimeError(f"{model} at {base}: {len(delays)} of {chunks} chunks arrived")
    return (first - start) / 1e9, delays


def start_proxy(home: Path, *flags: str):
    from helpers.server import ServerProcess

    return ServerProcess(home, "--no-access-log", *flags, env={"BENCH_KEY": KEY}).wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--interval-ms", type=float, default=5.0)
    ap.add_argument("--first-token-runs", type=int, default=40, help="Short answers per path, for the TTFT median.")
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()

    from helpers.env import home_env
    from helpers.fakeapi import FakeAPI

    home = Path(tempfile.mkdtemp(prefix="xuetu-bench-remote-"))
    with FakeAPI(key=KEY) as fake, home_env(home):
        fake.stamp_interval = args.interval_ms / 1000
        os.environ["BENCH_KEY"] = KEY
        from xuetu.models.remote import create_remote

        create_remote("bench:stamp", url=fake.url, api_model="stamp", key_env="BENCH_KEY")
        proxies = {"proxied, no guards": start_proxy(home, "--no-guard"), "proxied, default guards": start_proxy(home)}
        sides = {"direct (baseline)": (fake.url, "stamp")}
        sides.update({name: (p.url + "/v1", "bench:stamp") for name, p in proxies.items()})
        auth = {"Authorization": f"Bearer {KEY}"}
        try:
            for base, model in sides.values():  # warm-up: connections, the model's first lease
                one_stream(base, model, 4, auth)
            ttft = {name: [] for name in sides}
            delay = {name: [] for name in sides}
            for r in range(args.rounds):
                for name, (base, model) in sides.items():
                    first, delays = one_stream(base, model, args.chunks, auth)
                    ttft[name].append(first)
                    delay[name].extend(delays)
                print(f"round {r + 1}/{args.rounds}: " + ", ".join(
                    f"{n} {statistics.median(delay[n]) * 1000:.2f} ms" for n in sides), flush=True)
            for _ in range(args.first_token_runs):  # time to first token: many short answers, alternating
                for name, (base, model) in sides.items():
                    ttft[name].append(one_stream(base, model, 2, auth)[0])
        finally:
            for p in proxies.values():
                p.stop()

    base = "direct (baseline)"
    med = {n: statistics.median(v) * 1000 for n, v in delay.items()}
    p90 = {n: statistics.quantiles(v, n=10)[-1] * 1000 for n, v in delay.items()}
    first = {n: statistics.median(v) * 1000 for n, v in ttft.items()}
    lines = ["| path | chunk delay p50 (ms) | chunk delay p90 (ms) | time to first token p50 (ms) | "
             "added per chunk (ms) | added to first token (ms) |", "|---|---:|---:|---:|---:|---:|"]
    for n in sides:
        added = "" if n == base else f"{med[n] - med[base]:+.2f}"
        added_first = "" if n == base else f"{first[n] - first[base]:+.1f}"
        lines.append(f"| {n} | {med[n]:.2f} | {p90[n]:.2f} | {first[n]:.1f} | {added} | {added_first} |")
    plain = "proxied, no guards"
    per_chunk, to_first = med[plain] - med[base], first[plain] - first[base]
    notes = ["",
             f"- the proxy adds **{per_chunk:.2f} ms** per chunk (target < 5 ms: {'met' if per_chunk < 5 else 'NOT met'}) "
             f"and **{to_first:.1f} ms** to the first token (target < 20 ms: {'met' if to_first < 20 else 'NOT met'}), "
             "against calling the upstream directly",
             f"- {args.rounds} rounds alternating the three paths, {args.chunks} chunks per answer, one chunk every "
             f"{args.interval_ms:g} ms from a provider on loopback; delays are medians over "
             f"{args.rounds * args.chunks} chunks per path; time to first token is the median of "
             f"{args.rounds + args.first_token_runs} answers per path, each on a new connection",
             "- with the default guards, text waits in the hold-back window until enough follows it to be checked: "
             "a delay by design, not proxy overhead"]
    table = "\n".join(lines + notes)
    print("\n" + table)
    if not args.no_record:
        from _record import record

        record("remote", "Remote models through the proxy (issue 26: `benchmarks/remote.py`)", table)


if __name__ == "__main__":
    main()
