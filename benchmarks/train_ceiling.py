"""How fast LoRA training on the embedded model could possibly go on this CPU: a matmul-only ceiling.

Times the matrix multiplies one training step cannot avoid, at the shapes benchmarks/train.py uses (384-token
packed rows, fp32): each decoder layer's seven frozen projections forward and their input gradients backward,
and the output head on the answer tokens only (the prompt's logits are never built). Attention, norms,
activations, the LoRA matrices themselves and the optimizer are left out, so the real loop can only be
slower. The baseline (HF Trainer + PEFT, padding to the longest) runs in the same run, as benchmarks/train.py
runs it, and the ceiling is reported as a multiple of its tokens/s.

    .venv/bin/python benchmarks/train_ceiling.py [--no-baseline] [--no-record]
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


def linear_ms(tokens: int, out_f: int, in_f: int) -> float:
    """Forward y = x W^T and the input gradient gx = gy W (the weight is frozen: no weight gradient)."""
    import torch

    x, w, gy = torch.randn(tokens, in_f), torch.randn(out_f, in_f), torch.randn(tokens, out_f)
    return best_ms(lambda: (x @ w.T, gy @ w))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-baseline", action="store_true", help="skip the HF Trainer run (about 3.5 minutes)")
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()

    import torch
    from transformers import AutoConfig, AutoTokenizer

    import xuetu.data
    from train import make_data
    from xuetu import models

    models.pull("smollm2:135m", progress=False)
    ref = models.resolve("smollm2:135m")
    cfg = AutoConfig.from_pretrained(ref.hf_dir)
    tok = AutoTokenizer.from_pretrained(ref.hf_dir)
    h, inter, layers, vocab = cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers, cfg.vocab_size
    head_dim = getattr(cfg, "head_dim", None) or h // cfg.num_attention_heads
    kv = cfg.num_key_value_heads * head_dim

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "sft.jsonl"
        make_data(data, 192)
        total = answer = 0
        for record in xuetu.data.load(str(data)):
            ex = xuetu.data.tokenize_for_training(tok, record, 512)
            total += len(ex.input_ids)
            answer += sum(1 for label in ex.labels if label != -100)
        baseline = None
        if not args.no_baseline:
            out = subprocess.run([sys.executable, str(Path(__file__).with_name("train.py")), "--child", "trainer", str(data)],
                                 capture_output=True, text=True)
            line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                raise SystemExit(f"baseline failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
            baseline = json.loads(line[7:])

    shapes = {"q": (h, h), "k": (kv, h), "v": (kv, h), "o": (h, h), "gate": (inter, h), "up": (inter, h), "down": (h, inter)}
    per_layer = {name: linear_ms(ROW, *shape) for name, shape in shapes.items()}
    head_tokens = max(1, round(ROW * answer / total))
    head = linear_ms(head_tokens, vocab, h)
    row_ms = layers * sum(per_layer.values()) + head
    ceiling = ROW / (row_ms / 1000)
    flops = 2 * 2 * (ROW * layers * sum(o * i for o, i in shapes.values()) + head_tokens * vocab * h)  # fwd + bwd
    rate = flops / (row_ms / 1000) / 1e9

    rows = ["| part | per 384-token row (ms) |", "|---|---:|"]
    rows += [f"| {layers} x {name}_proj ({o}x{i}), forward + input gradient | {layers * ms:.1f} |"
             for (name, (o, i)), ms in zip(shapes.items(), per_layer.values())]
    rows += [f"| output head ({vocab}x{h}) on {head_tokens} answer tokens | {head:.1f} |",
             f"| **matmuls a step cannot avoid** | **{row_ms:.1f}** |", "",
             f"- answer tokens are {answer / total:.0%} of the {total:,} tokens (only they reach the output head)",
             f"- those matmuls run at {rate:.0f} GFLOP/s (fp32, {torch.get_num_threads()} threads)",
             f"- **ceiling: {ceiling:.0f} tokens/s** with everything else (attention, norms, activations, LoRA, "
             "optimizer) free"]
    if baseline:
        base_tps = baseline["tokens"] / baseline["seconds"]
        rows += [f"- baseline in the same run (HF Trainer + PEFT, pad to longest): {base_tps:.1f} tokens/s, "
                 f"so the ceiling is **{ceiling / base_tps:.2f}x** the baseline; the issue's target is 1.5x"]
    table = "\n".join(rows)
    print("\n" + table)
    if not args.no_record:
        from _record import record

        record("train-ceiling", "LoRA training: the matmul ceiling on this CPU (`benchmarks/train_ceiling.py`)", table)
        print("\nrecorded in benchmarks/RESULTS.md")


if __name__ == "__main__":
    main()
