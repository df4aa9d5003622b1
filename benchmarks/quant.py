"""Quantisation, measured: weights in memory, peak RSS, decode tokens/s and perplexity of the
embedded SmolLM2-135M-Instruct at fp32 and int8 (transformers engine) and as GGUF f16, q8_0,
q4_0 and the embedded Q4_1 (llama.cpp engine). The seeds' memory table (FP32/FP16/INT8/INT4), measured.

Each row runs in its own process, so its peak RSS is its own. Perplexity is teacher-forced on one
fixed English + Chinese text, tokenised once by the HF tokenizer; every row scores the same ids.
The f16/q8_0/q4_0 files come from `xuetu.export.gguf.write_gguf`; without it those rows are skipped.

    .venv/bin/python benchmarks/quant.py [--quick] [--no-record]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

PROMPT = [{"role": "user", "content": "Write a long, detailed story about a robot who learns to paint."}]
TEXT = (
    "The village library opened at eight every morning. Mei arrived first, carrying a thermos of tea and a "
    "notebook full of questions about the stars. The librarian, an old man who had once been a sailor, showed "
    "her how to find the constellations on a paper map and explained why the moon changes its shape over a "
    "month. By noon she had filled four pages with drawings, and she promised to come back the next day.\n"
    "小镇的图书馆每天早上八点开门。梅总是第一个到，她带着一壶热茶和一本写满问题的笔记本。"
    "图书管理员是一位当过水手的老人，他教她在纸质星图上寻找星座，还解释了月亮为什么每个月都会改变形状。"
    "到了中午，她已经画满了四页，并答应第二天再来。\n"
    "Machine learning is a way of teaching computers to find patterns in data. Instead of writing every rule "
    "by hand, we show the model many examples and let it adjust its parameters to make fewer mistakes. "
    "机器学习是一种让计算机从数据中发现规律的方法。我们不必手写每一条规则，而是给模型看大量的例子，"
    "让它调整参数，减少错误。"
)
GGUF_QUANTS = ["f16", "q8_0", "q4_0"]


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def current_rss() -> tuple[int, int]:
    """(anonymous, file-backed) resident bytes now: mmapped weight files count as file-backed."""
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return tuple(int(status[k].split()[0]) * 1024 for k in ("RssAnon", "RssFile"))


def decode_rate(engine, tokens: int) -> tuple[float, int]:
    from xuetu.engines.base import GenerateOptions

    opts = GenerateOptions(temperature=0, max_tokens=tokens, repeat_penalty=1.0)
    list(engine.generate(PROMPT, GenerateOptions(temperature=0, max_tokens=4)))  # warm-up
    first = last = None
    n = 0
    for c in engine.generate(PROMPT, opts):
        now = time.perf_counter()
        if first is None and c.completion_tokens:
            first = now
        last, n = now, c.completion_tokens
    return (n - 1) / (last - first), n


def nll_torch(model, ids: list[int]) -> float:
    import torch

    x = torch.tensor([ids])  # (1, T)
    with torch.inference_mode():
        logits = model(input_ids=x).logits[0, :-1].float()  # (T-1, vocab)
    return torch.nn.functional.cross_entropy(logits, x[0, 1:]).item()


def nll_llama(gguf: Path, ids: list[int]) -> float:
    import numpy as np
    from llama_cpp import Llama

    llm = Llama(model_path=str(gguf), logits_all=True, n_ctx=len(ids) + 8, n_batch=512, verbose=False)
    llm.eval(ids)
    scores = np.asarray(llm.scores[: len(ids) - 1], dtype=np.float64)  # (T-1, vocab): logits after each token
    top = scores.max(axis=1, keepdims=True)
    logp = scores - top - np.log(np.exp(scores - top).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(ids) - 1), ids[1:]].mean())


def gguf_weight_bytes(gguf: Path) -> int:
    from gguf import GGUFReader

    return sum(int(t.n_bytes) for t in GGUFReader(str(gguf), "r").tensors)


def measure(row: str, gguf: str | None, tokens: int) -> dict:
    """One row, in this process: weights bytes, decode tokens/s, perplexity, then peak RSS."""
    from transformers import AutoTokenizer

    from xuetu import engines, models
    from xuetu.models.ref import ModelRef

    ref = models.pull("smollm2:135m", progress=False)
    ids = list(AutoTokenizer.from_pretrained(ref.hf_dir)(TEXT)["input_ids"])
    if gguf is None:
        engine = engines.load(ref, engine="transformers", quant=None if row == "fp32" else row)
        loaded = current_rss()
        weights = engine.info()["weights_bytes"]
        rate, n = decode_rate(engine, tokens)
        nll = nll_torch(engine.model, ids)
    else:
        path = Path(gguf)
        engine = engines.load(ModelRef(row, path.parent, {"formats": {"gguf": path.name}}), engine="llama.cpp")
        loaded = current_rss()
        weights = gguf_weight_bytes(path)
        rate, n = decode_rate(engine, tokens)
        engine.close()
        nll = nll_llama(path, ids)  # a second Llama with logits for every position
    return {"row": row, "weights": weights, "loaded": loaded, "rss": peak_rss(), "rate": rate, "tokens": n,
            "ppl": math.exp(nll), "text_tokens": len(ids)}


def run_row(row: str, gguf: Path | None, tokens: int) -> dict:
    cmd = [sys.executable, __file__, "--row", row, "--tokens", str(tokens)] + (["--gguf", str(gguf)] if gguf else [])
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"row {row} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="32 decode tokens instead of 128 (a check, not a record).")
    ap.add_argument("--tokens", type=int, default=None)
    ap.add_argument("--no-record", action="store_true", help="Print only; do not update RESULTS.md.")
    ap.add_argument("--row", help=argparse.SUPPRESS)  # internal: measure one row in this process
    ap.add_argument("--gguf", help=argparse.SUPPRESS)
    args = ap.parse_args()
    tokens = args.tokens or (32 if args.quick else 128)
    if args.row:
        print(json.dumps(measure(args.row, args.gguf, tokens)))
        return

    from xuetu import models

    ref = models.pull("smollm2:135m", progress=False)
    plan: list[tuple[str, str, Path | None]] = [("fp32", "transformers fp32", None),
                                                ("int8", "transformers int8 (weight-only)", None)]
    notes = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            from xuetu.export.gguf import write_gguf
        except ImportError:
            write_gguf = None
            notes.append("GGUF f16/q8_0/q4_0 rows skipped: `xuetu.export.gguf.write_gguf` is not available yet.")
            print(notes[-1], file=sys.stderr)
        for q in GGUF_QUANTS if write_gguf else []:
            plan.append((q, f"llama.cpp GGUF {q}", write_gguf(ref.hf_dir, Path(tmp) / f"smollm2-{q}.gguf", q)))
        plan.append(("q4_1", "llama.cpp GGUF Q4_1 (embedded)", ref.gguf_file))
        rows = []
        for row, label, gguf in plan:
            print(f"measuring {label} ...", file=sys.stderr, flush=True)
            rows.append({**run_row(row, gguf, tokens), "label": label})

    base = rows[0]
    lines = ["| row | weights in memory | x fp32 | RSS loaded: anon + file | peak RSS | decode tokens/s | x fp32 | perplexity "
             "| vs fp32 |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['label']} | {r['weights'] / 1e6:.1f} MB | {r['weights'] / base['weights']:.2f} | "
                     f"{r['loaded'][0] / 1e6:.0f} + {r['loaded'][1] / 1e6:.0f} MB | {r['rss'] / 1e6:.0f} MB | {r['rate']:.1f} | {r['rate'] / base['rate']:.2f} | "
                     f"{r['ppl']:.3f} | {(r['ppl'] / base['ppl'] - 1) * 100:+.1f}% |")
    table = "\n".join(lines)
    body = (f"{table}\n\n- Weights: measured parameter and buffer storage after loading (torch), tensor bytes in "
            f"the file (GGUF, which llama.cpp maps as it is). RSS loaded: the whole process (torch, transformers and "
            f"the tokenizer included) once the engine is ready, as anonymous memory + file-backed pages; the "
            f"safetensors file stays mapped after loading, so its pages show as file-backed (clean, reclaimable) even "
            f"for int8, and a GGUF is file-backed by design. Peak RSS: its maximum over the run, which for int8 "
            f"includes the fp32 weights it was quantised from, and for GGUF a second context for the perplexity.\n"
            f"- Load average at the start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (a shared machine: "
            f"speeds are comparable within this table only).\n"
            f"- Decode: greedy, {tokens} tokens, one stream. Perplexity: teacher-forced over the same "
            f"{base['text_tokens']} HF-tokenizer ids (English + Chinese) for every row.\n"
            + "".join(f"- {n}\n" for n in notes))
    print(table)
    for n in notes:
        print(n)
    if not args.no_record and not args.quick:
        from _record import record

        record("quant", "Quantisation: memory, speed and perplexity (`benchmarks/quant.py`)", body)


if __name__ == "__main__":
    main()
