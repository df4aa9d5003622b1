"""How fast LoRA training on the embedded model could possibly go on this CPU: a matmul-only ceiling.

Times the matrix multiplies one training step cannot avoid, at the shapes benchmarks/train.py uses (384-token
packed rows): each decoder layer's seven frozen projections forward and their input gradients backward (but
for the first layer's q, k and v, whose input needs no gradient), and the output head on the answer tokens
only (the prompt's logits are never built). Attention, norms, activations, the LoRA matrices themselves and
the optimizer are left out, and every position of a row counts as a real token, so the loop of
benchmarks/train.py can only be slower: its xuetu rows (real tokens per second of training steps) are below
this ceiling when both are measured on the same machine, at the same precision. Measured in fp32 and, where
the CPU has bf16 units, in bf16 too (train.py's precision=bf16 computes in bf16 under autocast), since bf16
matrix multiplies there are much faster and fp32's ceiling does not bound them.

Run alone it also runs the baseline (HF Trainer + PEFT, padding to the longest) in fp32, as benchmarks/train.py
runs it, and reports the fp32 ceiling as a multiple of its tokens/s. `make bench` passes --no-baseline, since
train.py measures that baseline, and xuetu's own loop, in the same run.

    .venv/bin/python benchmarks/train_ceiling.py [--precision fp32|bf16|both] [--no-baseline] [--no-record]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

ROW = 384  # tokens per packed row, as in benchmarks/train.py


def best_ms(fn, repeats: int = 7) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times) * 1000


def linear_ms(tokens: int, out_f: int, in_f: int, dtype) -> tuple[float, float]:
    """(forward y = x W^T, input gradient gx = gy W) in ms; the weight is frozen, so it gets no gradient."""
    import torch

    x, w, gy = (torch.randn(tokens, in_f, dtype=dtype), torch.randn(out_f, in_f, dtype=dtype),
                torch.randn(tokens, out_f, dtype=dtype))
    return best_ms(lambda: x @ w.T), best_ms(lambda: gy @ w)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--precision", choices=["fp32", "bf16", "both"], default=None,
                    help="default: both where the CPU has bf16 units, else fp32 (as benchmarks/train.py)")
    ap.add_argument("--no-baseline", action="store_true", help="skip the HF Trainer run (3 to 7 minutes on 2 cores)")
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()

    import torch
    from transformers import AutoConfig, AutoTokenizer

    import xuetu.data
    from train import make_data
    from xuetu import models
    from xuetu.train.finetune import cpu_has_bf16

    choice = args.precision or ("both" if cpu_has_bf16() else "fp32")
    precisions = ["fp32", "bf16"] if choice == "both" else [choice]
    models.pull("smollm2:135m", progress=False)
    ref = models.resolve("smollm2:135m")
    cfg = AutoConfig.from_pretrained(ref.hf_dir)
    tok = AutoTokenizer.from_pretrained(ref.hf_dir)
    h, inter, layers, vocab = cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers, cfg.vocab_size
    head_dim = getattr(cfg, "head_dim", None) or h // cfg.num_attention_heads
    kv = cfg.num_key_value_heads * head_dim

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "sft.jsonl"
        make_data(data, 192)  # train.py's default data
        total = answer = 0
        for record in xuetu.data.load(str(data)):
            ex = xuetu.data.tokenize_for_training(tok, record, 512)
            total += len(ex.input_ids)
            answer += sum(1 for label in ex.labels if label != -100)
        baseline = None
        if not args.no_baseline and "fp32" in precisions:
            out = subprocess.run([sys.executable, str(Path(__file__).with_name("train.py")), "--child", "trainer",
                                  str(data), "fp32"], capture_output=True, text=True)
            line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                raise SystemExit(f"baseline failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
            baseline = json.loads(line[7:])

    shapes = {"q": (h, h), "k": (kv, h), "v": (kv, h), "o": (h, h), "gate": (inter, h), "up": (inter, h), "down": (h, inter)}
    head_tokens = max(1, round(ROW * answer / total))
    # The first layer's q, k and v read the embeddings, which are frozen: no gradient flows into their input.
    no_input_grad = {"q", "k", "v"}
    parts, row_ms, ceiling, rate = {}, {}, {}, {}
    for precision in precisions:
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        ms = {name: linear_ms(ROW, *shape, dtype) for name, shape in shapes.items()}
        parts[precision] = {name: layers * fwd + (layers - (name in no_input_grad)) * bwd
                            for name, (fwd, bwd) in ms.items()}
        parts[precision]["head"] = sum(linear_ms(head_tokens, vocab, h, dtype))
        row_ms[precision] = sum(parts[precision].values())
        ceiling[precision] = ROW / (row_ms[precision] / 1000)
        macs = (ROW * sum(o * i * (2 * layers - (name in no_input_grad)) for name, (o, i) in shapes.items())
                + 2 * head_tokens * vocab * h)  # forward + input gradient
        rate[precision] = 2 * macs / (row_ms[precision] / 1000) / 1e9

    rows = ["| part | " + " | ".join(f"{p} ms per 384-token row" for p in precisions) + " |",
            "|---|" + "---:|" * len(precisions)]
    for name, (o, i) in shapes.items():
        grads = f"{layers - 1} input gradients" if name in no_input_grad else "input gradients"
        rows.append(f"| {layers} x {name}_proj ({o}x{i}), forward + {grads} | "
                    + " | ".join(f"{parts[p][name]:.1f}" for p in precisions) + " |")
    rows += [f"| output head ({vocab}x{h}) on {head_tokens} answer tokens, forward + input gradient | "
             + " | ".join(f"{parts[p]['head']:.1f}" for p in precisions) + " |",
             "| **matmuls a step cannot avoid** | " + " | ".join(f"**{row_ms[p]:.1f}**" for p in precisions) + " |",
             "", f"- answer tokens are {answer / total:.0%} of the {total:,} tokens (only they reach the output head)"]
    for p in precisions:
        rows.append(f"- {p}: those matmuls run at {rate[p]:.0f} GFLOP/s ({torch.get_num_threads()} threads): "
                    f"**ceiling {ceiling[p]:.0f} tokens/s**, with everything else (attention, norms, activations, "
                    "LoRA, optimizer) free")
    if "bf16" in ceiling:
        rows.append(f"- bf16 / fp32 ceiling on this CPU: {ceiling['bf16'] / ceiling['fp32']:.2f}x")
    rows.append("- an upper bound for the xuetu rows of the same precision in the LoRA training section "
                "(`benchmarks/train.py`: real tokens per second of training steps, same 384-token rows), "
                "when both are measured on the same machine; a ceiling from another machine says nothing about them")
    if baseline:
        base_tps = baseline["tokens"] / baseline["seconds"]
        rows += [f"- baseline measured with it (HF Trainer + PEFT, pad to longest, fp32): {base_tps:.1f} tokens/s, "
                 f"so the fp32 ceiling is **{ceiling['fp32'] / base_tps:.2f}x** the baseline; the issue's target for "
                 "xuetu is 1.5x"]
    table = "\n".join(rows)
    print("\n" + table)
    if not args.no_record:
        from _record import record

        record("train_ceiling", "LoRA training: the matmul ceiling on this CPU (`benchmarks/train_ceiling.py`)",
               table)


if __name__ == "__main__":
    main()
