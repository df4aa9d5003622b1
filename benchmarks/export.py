"""What exporting buys a fine-tuned model: decode speed on llama.cpp against the transformers engine, and the
exported GGUF against the embedded GGUF of the base at the same precision (the "llama.cpp speed" of the issue).

A LoRA adapter (r=16 on every linear layer, random B, so it really changes the weights; speed does not depend on
what was learned) over the embedded SmolLM2-135M is exported four ways and each is timed in the same run:
- the adapter on the transformers engine (fp32, PEFT): what `xuetu run` does before any export;
- merged and exported to GGUF q4_1 and q8_0, on the llama.cpp engine;
- as a GGUF LoRA over the base's own Q4_1 GGUF (the adapter applied at run time);
- baseline: the embedded Q4_1 GGUF of the base model, on the llama.cpp engine.

    .venv/bin/python benchmarks/export.py [--tokens 128] [--runs 3] [--no-record]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

from decode import PROMPT, bench, time_stream  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()

    from helpers.tiny import build_lora
    from xuetu import engines, models
    from xuetu.engines.base import GenerateOptions
    from xuetu.export import export
    from xuetu.models import store

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        os.environ["XUETU_HOME"] = str(home)  # a scratch store: the user's is left alone
        base = models.pull("smollm2:135m", progress=False)
        build_lora(base.hf_dir, Path(tmp) / "lora", r=16)
        models.create("tuned:latest", Path(tmp) / "lora", base="smollm2:135m", progress=False)
        timings = {}
        for fmt, quant in (("gguf", "q4_1"), ("gguf", "q8_0"), ("gguf-lora", None)):
            t = time.perf_counter()
            result = export("tuned", fmt, quant=quant, progress=False)
            timings[result.name] = (time.perf_counter() - t, result.report)
        opts = GenerateOptions(temperature=0, max_tokens=args.tokens, repeat_penalty=1.0)
        rows = []
        for label, name, engine in (("tuned, before export: transformers engine + PEFT (fp32)", "tuned", "transformers"),
                                    ("tuned, exported GGUF q8_0: llama.cpp engine", "tuned:q8_0", "llama.cpp"),
                                    ("tuned, exported GGUF q4_1: llama.cpp engine", "tuned:q4_1", "llama.cpp"),
                                    ("tuned, GGUF LoRA over the Q4_1 base: llama.cpp engine", "tuned:gguf", "llama.cpp"),
                                    ("baseline: base model, embedded Q4_1 GGUF: llama.cpp engine", "smollm2:135m",
                                     "llama.cpp")):
            eng = engines.load(name, engine=engine)
            ttft, tps, n = bench(lambda eng=eng: time_stream(eng.generate(PROMPT, opts)), args.runs)
            eng.close()
            size = sum(m["size"] for m in store.get(models.resolve(name).name).manifest["files"].values())
            rows.append((label, name, ttft, tps, n, size))
    by = {r[1]: r for r in rows}
    lines = ["| model | engine | decode tokens/s | first token (ms) | tokens | store size (MB) |",
             "|---|---|---:|---:|---:|---:|"]
    lines += [f"| {label} | `{name}` | {tps:.1f} | {ttft * 1000:.0f} | {n} | {size / 1e6:.0f} |"
              for label, name, ttft, tps, n, size in rows]
    base_tps = by["smollm2:135m"][3]
    lines += ["",
              f"- exported q4_1 / base model's embedded Q4_1 on the same engine: **{by['tuned:q4_1'][3] / base_tps:.2f}x**"
              " (the fine-tuned model runs at llama.cpp's speed)",
              f"- exported q4_1 / the adapter on transformers: **{by['tuned:q4_1'][3] / by['tuned'][3]:.1f}x**; "
              f"q8_0: {by['tuned:q8_0'][3] / by['tuned'][3]:.1f}x",
              f"- GGUF LoRA applied at run time / base Q4_1: {by['tuned:gguf'][3] / base_tps:.2f}x",
              "- export time including verification: " + ", ".join(
                  f"{name} {secs:.0f} s ({'verified' if rep.ok else 'FAILED'})" for name, (secs, rep) in timings.items()),
              f"- median of {args.runs} runs after a warm-up, greedy, up to {args.tokens} new tokens; LoRA r=16 on all "
              "linear layers, random B (speed does not depend on what was learned)"]
    table = "\n".join(lines)
    print(table)
    if not args.no_record:
        from _record import record

        record("export", "Exported fine-tuned models on llama.cpp (issue 8: `benchmarks/export.py`)", table)


if __name__ == "__main__":
    main()
