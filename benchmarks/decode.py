"""Decode tokens/s of both engines on the embedded default model (SmolLM2-135M-Instruct).

Each engine is compared in the same run with its library's own generation call, so the
numbers show what our streaming loops cost, and the llama.cpp/transformers ratio shows what
the GGUF path buys on a CPU.

    .venv/bin/python benchmarks/decode.py [--tokens 128] [--runs 3] [--no-record]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

PROMPT = [{"role": "user", "content": "Write a long, detailed story about a robot who learns to paint."}]


def time_stream(chunks) -> tuple[float, float, int]:
    """(seconds to the first token, decode tokens/s after it, tokens)."""
    start = time.perf_counter()
    first = last = None
    n = 0
    for c in chunks:
        now = time.perf_counter()
        if first is None and c.completion_tokens:
            first = now
        last, n = now, c.completion_tokens
    return first - start, (n - 1) / (last - first), n


def bench(fn, runs: int) -> tuple[float, float, int]:
    fn()  # warm-up
    results = [fn() for _ in range(runs)]
    return (statistics.median(r[0] for r in results), statistics.median(r[1] for r in results), results[-1][2])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-record", action="store_true", help="Print only; do not update RESULTS.md.")
    args = ap.parse_args()

    import torch

    from xuetu import engines, models
    from xuetu.engines.base import GenerateOptions

    ref = models.pull("smollm2:135m", progress=False)
    # Greedy with no repeat penalty and a prompt that makes long answers; min tokens is not an
    # option of ours, so runs that end early are reported with their token count.
    opts = GenerateOptions(temperature=0, max_tokens=args.tokens, repeat_penalty=1.0)
    rows = []

    tf = engines.load(ref, engine="transformers")
    rows.append(("xuetu transformers engine (fp32)", *bench(lambda: time_stream(tf.generate(PROMPT, opts)), args.runs)))
    ids = torch.tensor([tf.encode(PROMPT)])

    def hf_generate():
        t0 = time.perf_counter()
        out = tf.model.generate(ids, max_new_tokens=1, do_sample=False)
        t1 = time.perf_counter()
        out = tf.model.generate(ids, max_new_tokens=args.tokens, min_new_tokens=args.tokens, do_sample=False)
        t2 = time.perf_counter()
        n = out.shape[1] - ids.shape[1]
        return t1 - t0, (n - 1) / ((t2 - t1) - (t1 - t0)), n

    rows.append(("baseline: HF model.generate (fp32)", *bench(hf_generate, args.runs)))
    tf.close()

    cpp = engines.load(ref, engine="llama.cpp")
    rows.append(("xuetu llama.cpp engine (Q4_1)", *bench(lambda: time_stream(cpp.generate(PROMPT, opts)), args.runs)))
    prompt_ids = cpp.encode(PROMPT)

    def cpp_completion():
        start = time.perf_counter()
        first = last = None
        n = 0
        for _ in cpp.llm.create_completion(prompt_ids, max_tokens=args.tokens, temperature=0, repeat_penalty=1.0,
                                           stream=True):
            now = time.perf_counter()
            first = first or now
            last, n = now, n + 1
        return first - start, (n - 1) / (last - first), n

    rows.append(("baseline: llama-cpp-python create_completion", *bench(cpp_completion, args.runs)))
    cpp.close()

    lines = ["| engine | first token (ms) | decode tokens/s | tokens |", "|---|---:|---:|---:|"]
    lines += [f"| {name} | {ttft * 1000:.0f} | {tps:.1f} | {n} |" for name, ttft, tps, n in rows]
    ratio_cpp = rows[2][2] / rows[0][2]
    lines += ["",
              f"- llama.cpp engine / transformers engine: **{ratio_cpp:.1f}x** decode speed",
              f"- transformers engine / HF generate: {rows[0][2] / rows[1][2]:.2f}x",
              f"- llama.cpp engine / llama-cpp-python create_completion: {rows[2][2] / rows[3][2]:.2f}x",
              f"- median of {args.runs} runs after a warm-up, greedy, up to {args.tokens} new tokens, "
              f"torch threads {torch.get_num_threads()}",
              "- llama.cpp's first-token time is low because it reuses the cached prompt after the warm-up; "
              "time to first token under load is measured by benchmarks/serve.py"]
    table = "\n".join(lines)
    print(table)
    if not args.no_record:
        from _record import record

        record("decode", "Decode speed, embedded default model (issue 2: `benchmarks/decode.py`)", table)


if __name__ == "__main__":
    main()
