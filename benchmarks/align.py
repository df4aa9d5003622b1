"""DPO training speed and memory on the embedded model: `xuetu finetune --method dpo` against TRL's `DPOTrainer`
(LoRA, fp32, on the CPU), on the same pairs, sequences, model and hyperparameters.

Each side runs in its own process (so peak RSS is its own). Tokens/s counts real (non-padding) tokens of the
chosen and the rejected sequences (prompt and answer) trained per second of the training phase, and that phase
includes each side's reference pass:

- xuetu computes the reference log-probabilities once, before training (the adapter switched off); its time
  is the reference pass (`reference_logps`) plus its optimizer steps (the `seconds` of metrics.jsonl);
- TRL computes them in every step with the adapter disabled (its default, `precompute_ref_log_probs=False`),
  which was its faster setting on a 2-core CPU for one epoch: `--trl-ref precompute` runs
  `precompute_ref_log_probs=True` instead (batch `precompute_ref_batch_size=8`, as xuetu's), whose pass over
  the dataset and whose cache cost more than they save when every pair is seen once. No gradient
  checkpointing (DPOConfig turns it on by default: slower), bf16=False, AdamW betas (0.9, 0.95) as xuetu's;
  its time is Trainer's `train_runtime` plus, with precompute, that pass.

Both sides train on the same token sequences: the pairs are tokenized once by xuetu (chat template, labels
only on the answer) and TRL gets them as prompt_ids/chosen_ids/rejected_ids (its own tokenizing step is
skipped, it is not timed anyway). Same LoRA (r 16, alpha 32, all linear layers, no dropout), lr 5e-5
(xuetu's DPO default for LoRA), cosine schedule with 5% warm-up, beta 0.1, 4 pairs per optimizer step, one
epoch, max_length 512 (nothing is longer), seed 0.

    .venv/bin/python benchmarks/align.py [--pairs 64] [--rounds 2] [--trl-ref per-step|precompute] [--no-record]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

HP = {"lr": 5e-5, "beta": 0.1, "batch_size": 4, "epochs": 1, "r": 16, "alpha": 32, "max_length": 512, "seed": 0,
      "ref_batch": 8}
TOPICS = ["tokens", "LoRA", "RAG", "quantisation", "distillation", "attention", "pretraining", "evaluation"]
GOOD = ["models", "learn", "from", "data", "and", "tokens", "carefully"]
BAD = ["maybe", "nothing", "random", "words", "wrong", "unclear"]


def make_data(path: Path, n: int) -> None:
    rng = random.Random(0)
    rows = []
    for i in range(n):  # prompts and answers of very different lengths; chosen and rejected differ in words and length
        topic = rng.choice(TOPICS)
        prompt = f"Question {i} about {topic}: " + " ".join(rng.choice(TOPICS) for _ in range(rng.randint(5, 60)))
        chosen = f"About {topic}: " + " ".join(rng.choice(GOOD) for _ in range(rng.randint(5, 70)))
        rejected = "Well, " + " ".join(rng.choice(BAD) for _ in range(rng.randint(3, 70)))
        rows.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_xuetu(data: str) -> dict:
    import os
    import shutil

    from xuetu.models import store
    from xuetu.train import align as align_mod
    from xuetu.train import args as targs
    from xuetu.train.finetune import finetune

    timed = {"ref": 0.0}
    reference_logps = align_mod.reference_logps

    def timed_reference(*a, **kw):
        start = time.perf_counter()
        try:
            return reference_logps(*a, **kw)
        finally:
            timed["ref"] += time.perf_counter() - start

    align_mod.reference_logps = timed_reference
    out = f"bench-dpo-{os.getpid()}"
    args = targs.TrainArgs(model="smollm2:135m", data=data, method="dpo", out=out, epochs=HP["epochs"],
                           batch_size=HP["batch_size"], grad_accum=1, lr=HP["lr"], max_length=HP["max_length"],
                           val_fraction=0.0, evaluate=False, min_steps=0, save_every=10**6, seed=HP["seed"],
                           precision="fp32", lora=targs.LoraArgs(r=HP["r"], alpha=HP["alpha"], dropout=0.0),
                           align=targs.AlignArgs(beta=HP["beta"]))
    result = finetune(args, resume=False, progress=False)
    metrics = [json.loads(x) for x in (result.run / "metrics.jsonl").read_text().splitlines()]
    steps_seconds = sum(m["seconds"] for m in metrics)
    store.remove(result.model)  # leave the user's store as it was
    shutil.rmtree(result.run, ignore_errors=True)
    return {"tokens": metrics[-1]["tokens"], "seconds": steps_seconds + timed["ref"], "ref_seconds": timed["ref"],
            "steps": result.steps, "mean_loss": sum(m["loss"] for m in metrics) / len(metrics)}


def tokenized_pairs(data: str, tokenizer) -> list[dict]:
    """xuetu's token sequences of each pair, as TRL's prompt_ids/chosen_ids/rejected_ids (the prompt ends where
    the labels begin; both rows share it)."""
    import xuetu.data
    from xuetu.train.examples import ensure_template
    from xuetu.train.prefs import build_pref_examples

    records = list(xuetu.data.load(data))
    ensure_template(tokenizer, records)
    examples, _ = build_pref_examples(records, tokenizer, HP["max_length"], paired=True)
    rows = []
    for ex in examples:
        start = next(i for i, x in enumerate(ex.labels) if x != -100)
        assert ex.ids[:start] == ex.rejected_ids[:start]
        rows.append({"prompt_ids": ex.ids[:start], "chosen_ids": ex.ids[start:],
                     "rejected_ids": ex.rejected_ids[start:]})
    return rows


def run_trl(data: str, ref_mode: str) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from trl import DPOConfig, DPOTrainer

    from xuetu import models
    from xuetu.models.weights import causal_lm
    from xuetu.train.finetune import load_tokenizer

    timed = {"ref": 0.0}

    class Trainer(DPOTrainer):
        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            return dataset  # already tokenized, by xuetu, as prompt_ids/chosen_ids/rejected_ids

        def _precompute_ref_logps(self, dataset, name, batch_size):
            start = time.perf_counter()
            try:
                return super()._precompute_ref_logps(dataset, name, batch_size)
            finally:
                timed["ref"] += time.perf_counter() - start

    ref = models.resolve("smollm2:135m")
    tok = load_tokenizer(ref.hf_dir)
    rows = tokenized_pairs(data, tok)
    model = causal_lm(ref.hf_dir, dtype=torch.float32)
    out = tempfile.mkdtemp()
    config = DPOConfig(output_dir=out, per_device_train_batch_size=HP["batch_size"], learning_rate=HP["lr"],
                       num_train_epochs=HP["epochs"], lr_scheduler_type="cosine", warmup_steps=0.05, beta=HP["beta"],
                       max_length=HP["max_length"], precompute_ref_log_probs=ref_mode == "precompute",
                       precompute_ref_batch_size=HP["ref_batch"], gradient_checkpointing=False, bf16=False,
                       adam_beta1=0.9, adam_beta2=0.95, weight_decay=0.0, max_grad_norm=1.0,
                       logging_steps=10**6, save_strategy="no", report_to=[], seed=HP["seed"],
                       use_cpu=not torch.cuda.is_available(), dataloader_num_workers=0)
    trainer = Trainer(model=model, args=config, train_dataset=Dataset.from_list(rows), processing_class=tok,
                      peft_config=LoraConfig(r=HP["r"], lora_alpha=HP["alpha"], lora_dropout=0.0,
                                             target_modules="all-linear", task_type="CAUSAL_LM"))
    result = trainer.train()
    tokens = sum(2 * len(r["prompt_ids"]) + len(r["chosen_ids"]) + len(r["rejected_ids"]) for r in rows)
    return {"tokens": tokens * HP["epochs"], "seconds": result.metrics["train_runtime"] + timed["ref"],
            "ref_seconds": timed["ref"], "steps": result.global_step, "mean_loss": result.metrics["train_loss"]}


def child(which: str, data: str, ref_mode: str) -> None:
    import torch

    torch.manual_seed(0)
    stats = run_xuetu(data) if which == "xuetu" else run_trl(data, ref_mode)
    stats["peak_rss_mb"] = peak_rss_mb()
    print("RESULT " + json.dumps(stats))


def measure(data: Path, rounds: int, ref_mode: str) -> dict:
    """Each side `rounds` times, alternating which goes first; each side's fastest run, with its highest peak RSS."""
    runs = {"trl": [], "xuetu": []}
    for r in range(rounds):
        for which in (("trl", "xuetu") if r % 2 == 0 else ("xuetu", "trl")):
            out = subprocess.run([sys.executable, __file__, "--child", which, str(data), ref_mode],
                                 capture_output=True, text=True)
            line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                raise SystemExit(f"{which} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
            runs[which].append(json.loads(line[7:]))
            print(f"round {r + 1}", which, runs[which][-1], flush=True)
    return {k: {**max(v, key=lambda x: x["tokens"] / x["seconds"]),
                "peak_rss_mb": max(x["peak_rss_mb"] for x in v)} for k, v in runs.items()}


def table(results: dict, pairs: int, rounds: int, ref_mode: str) -> str:
    ours, base = results["xuetu"], results["trl"]
    speed = (ours["tokens"] / ours["seconds"]) / (base["tokens"] / base["seconds"])
    memory = ours["peak_rss_mb"] / base["peak_rss_mb"]
    trl_ref = ("reference precomputed before training (precompute_ref_log_probs=True)" if ref_mode == "precompute"
               else "reference computed in every step (adapter disabled)")
    rows = ["| trainer | tokens | optimizer steps | reference pass (s) | seconds | tokens/s | peak RSS (MB) | "
            "mean loss |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in ((f"baseline: TRL DPOTrainer + PEFT, {trl_ref}", base),
                    ("xuetu finetune --method dpo (reference once, adapter off; labelled positions only through the "
                     "output head)", ours)):
        ref = "in the steps" if r is base and ref_mode == "per-step" else f"{r['ref_seconds']:.1f}"
        rows.append(f"| {name} | {r['tokens']:,} | {r['steps']} | {ref} | {r['seconds']:.1f} | "
                    f"{r['tokens'] / r['seconds']:.1f} | {r['peak_rss_mb']:.0f} | {r['mean_loss']:.4f} |")
    from trl import __version__ as trl_version

    rows += ["", f"- speed **{speed:.2f}x** TRL's tokens/s (target >= 1.5x: {'met' if speed >= 1.5 else 'NOT met'}), "
             f"peak memory **{memory:.2f}x** (target <= 1.0x: {'met' if memory <= 1.0 else 'NOT met'})",
             f"- DPO (sigmoid loss, beta {HP['beta']}), LoRA r={HP['r']} alpha={HP['alpha']} on all linear layers of "
             f"SmolLM2-135M, fp32, {pairs} pairs (prompts of 5-60 words, answers of 3-70), {HP['batch_size']} pairs "
             f"per optimizer step, lr {HP['lr']}, cosine, AdamW betas (0.9, 0.95), {HP['epochs']} epoch, on the CPU; "
             f"TRL {trl_version} with gradient checkpointing off and bf16 off; both train on the same token sequences "
             "(xuetu's tokenization)",
             "- tokens: the non-padding tokens of the chosen and rejected sequences; seconds: the reference pass plus "
             "the training steps, on both sides",
             f"- each side ran {rounds} times, alternating, and its fastest run is shown (with its highest peak RSS); "
             "mean loss: the mean of the steps' losses (the data order differs between the two)"]
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=2, help="runs of each side, alternating; the fastest counts")
    ap.add_argument("--trl-ref", choices=["per-step", "precompute"], default="per-step",
                    help="how TRL gets the reference log-probabilities")
    ap.add_argument("--no-record", action="store_true")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(*args.child)

    from xuetu import models

    models.pull("smollm2:135m", progress=False)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "pairs.jsonl"
        make_data(data, args.pairs)
        results = measure(data, args.rounds, args.trl_ref)
    text = table(results, args.pairs, args.rounds, args.trl_ref)
    print("\n" + text)
    if not args.no_record:
        from _record import record

        record("align", "DPO training, embedded model, against TRL (`benchmarks/align.py`)", text)


if __name__ == "__main__":
    main()
