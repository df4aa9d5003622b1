"""Evaluation speed: batched generation against one answer at a time, and a cached re-run against a fresh one.

The embedded SmolLM2-135M-Instruct answers the bundled example's questions (greedy, up to --tokens tokens)
through `xuetu.evaluate.run.evaluate` on the transformers engine (the one comparisons of a base with its LoRA
adapters use): once with one answer in flight (the baseline: what a plain loop over `engine.generate` does),
once with --batch answers in flight through the continuous-batching runner, then the same batched
evaluation again, answered from the cache. Also checks that batching left the answers as they were. For
context, the llama.cpp engine (what `xuetu eval` picks for a GGUF base on a CPU) one answer at a time.

    .venv/bin/python benchmarks/evaluate.py [--questions 16] [--tokens 64] [--batch 8] [--no-record]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--questions", type=int, default=16)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    os.environ["XUETU_HOME"] = tempfile.mkdtemp(prefix="xuetu-bench-eval-")
    from xuetu import models
    from xuetu.evaluate.generate import Models
    from xuetu.evaluate.run import EvalSpec, evaluate
    from xuetu.examples import example_path

    models.pull("smollm2:135m", progress=False)
    data = str(example_path("ai_tutor") / "qa.jsonl")

    def run(batch: int, fresh: bool, engine: str = "auto"):
        spec = EvalSpec(model="smollm2:135m", data=data, limit=args.questions, max_tokens=args.tokens, batch=batch,
                        fresh=fresh, engine=engine)
        with Models(engine=engine, batch=batch) as pool:
            pool.engine_for(spec.model)  # load outside the timing: both sides load the same model
            start = time.perf_counter()
            result = evaluate(spec, pool, progress=False)
            return result, time.perf_counter() - start

    serial, t_serial = run(1, fresh=True, engine="transformers")
    batched, t_batched = run(args.batch, fresh=True, engine="transformers")
    cached, t_cached = run(args.batch, fresh=False, engine="transformers")
    cpp, t_cpp = run(1, fresh=True, engine="llama.cpp")
    assert cached["cached"] and not batched["cached"]
    same = sum(a["answer"] == b["answer"] for a, b in zip(serial["examples"], batched["examples"]))
    rows = [
        ("one answer at a time (baseline)", t_serial, serial["latency"]),
        (f"{args.batch} in flight (continuous batching)", t_batched, batched["latency"]),
        ("re-run, answers from the cache", t_cached, None),
        ("llama.cpp engine, one at a time (the embedded Q4_1 GGUF)", t_cpp, cpp["latency"]),
    ]
    lines = [f"{args.questions} questions from the bundled example, greedy, up to {args.tokens} tokens each; "
             f"embedded SmolLM2-135M-Instruct on the transformers engine (CPU, fp32).", "",
             "| run | wall s | answers/s | tokens/s overall | speed-up vs baseline |", "|---|---:|---:|---:|---:|"]
    for label, seconds, lat in rows:
        tps = f"{lat['throughput_tokens_per_second']:.1f}" if lat else "–"
        lines.append(f"| {label} | {seconds:.2f} | {args.questions / seconds:.2f} | {tps} | {t_serial / seconds:.1f}× |")
    lines += ["", f"Batched answers identical to one-at-a-time answers: {same}/{args.questions} "
              "(greedy; where they differ, padding changed a near-tie in fp32)."]
    body = "\n".join(lines)
    print(body)
    if not args.no_record:
        from _record import record

        record("evaluate", "Evaluation: batching and the answer cache (`benchmarks/evaluate.py`)", body)


if __name__ == "__main__":
    main()
