"""Pretrain a small Llama- or Qwen2-style model from random weights on raw text (the seeds' 训练 step,
at toy scale), reusing an existing tokenizer.

    xuetu pretrain --config recipes/pretrain-tiny.yaml --data corpus/

setup (tokenizer, corpus -> token blocks, model from a config) -> fit (own loop) -> save (a base model).
"""

from __future__ import annotations

import hashlib
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from xuetu import models
from xuetu.notify import note
from xuetu.errors import XuetuError
from xuetu.models.names import parse_name
from xuetu.train import checkpoint
from xuetu.train.args import PretrainArgs, to_dict
from xuetu.train.finetune import mixed_precision, oom_error, seed_everything, sharded
from xuetu.train.loss import CausalLMLoss
from xuetu.train.optim import build_optimizer, build_scheduler
from xuetu.train.runs import Run, now, run_dir


@dataclass
class Result:
    model: str
    run: Path
    steps: int
    first_val: float
    val_loss: float
    parameters: int


def corpus_tokens(path: str, tokenizer) -> np.ndarray:
    """Every document's tokens followed by end-of-text, concatenated. (N,) int32"""
    import xuetu.data

    eos = tokenizer.eos_token_id
    chunks = []
    for record in xuetu.data.load(path):
        ids = tokenizer(record.joined(), add_special_tokens=False)["input_ids"]
        chunks.append(np.asarray(ids + [eos], dtype=np.int32))
    if not chunks:
        raise XuetuError(f"{path} holds no text")
    return np.concatenate(chunks)


def build_model(shape, tokenizer):
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

    common = dict(vocab_size=len(tokenizer), hidden_size=shape.hidden, num_hidden_layers=shape.n_layer,
                  num_attention_heads=shape.n_head, num_key_value_heads=shape.n_kv_head,
                  intermediate_size=shape.intermediate, max_position_embeddings=shape.context,
                  tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                  pad_token_id=tokenizer.pad_token_id)
    config = LlamaConfig(**common) if shape.architecture == "llama" else Qwen2Config(**common)
    return AutoModelForCausalLM.from_config(config, dtype=torch.float32)


def pretrain(args: PretrainArgs, resume: bool = True, progress: bool = True) -> Result:
    from accelerate import Accelerator
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    # -- setup --------------------------------------------------------------------------------------
    if not args.data:
        raise XuetuError("no corpus: pass --data PATH (a folder of .txt/.md files works)")
    out = str(parse_name(args.out))
    source = models.resolve(args.tokenizer, pull_missing=True, progress=progress)
    holder = models.resolve(source.base) if source.base else source
    if holder.hf_dir is None:
        raise XuetuError(f"{source.name} has no Hugging Face tokenizer to reuse")
    tokenizer = AutoTokenizer.from_pretrained(holder.hf_dir)
    tokenizer.chat_template = None  # a freshly pretrained model is a base model
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    accelerator = Accelerator(mixed_precision=mixed_precision(args.precision), cpu=not torch.cuda.is_available())
    main = accelerator.is_main_process
    seed_everything(args.seed)

    tokens = corpus_tokens(args.data, tokenizer)
    n_val = int(len(tokens) * args.val_fraction)
    bs = args.block_size
    train_tokens, val_tokens = tokens[: len(tokens) - n_val], tokens[len(tokens) - n_val:]
    n_blocks = (len(train_tokens) - 1) // bs
    if n_blocks < args.batch_size:
        raise XuetuError(f"the corpus is too small: {len(tokens):,} tokens make {n_blocks} blocks of {bs}",
                         "Add text, or lower block_size / batch_size.")
    val_blocks = [val_tokens[i:i + bs] for i in range(0, len(val_tokens) - bs, bs)][:64]

    model = build_model(args.shape, tokenizer)
    n_params = sum(p.numel() for p in model.parameters())
    loss_module = CausalLMLoss(model, efficient=True, fused=not sharded(accelerator))
    optimizer = build_optimizer(model, args.lr, args.weight_decay)
    world, rank = accelerator.num_processes, accelerator.process_index
    batches_per_epoch = n_blocks // (args.batch_size * world)
    steps_per_epoch = max(1, batches_per_epoch // args.grad_accum)
    total_steps = args.max_steps or max(1, math.ceil(steps_per_epoch * args.epochs))
    scheduler = build_scheduler(optimizer, total_steps, args.warmup, args.schedule)
    loss_module, optimizer = accelerator.prepare(loss_module, optimizer)
    device = accelerator.device
    fingerprint = hashlib.sha256(repr((len(tokens), n_params, total_steps, bs, world)).encode()).hexdigest()[:16]

    run = Run(run_dir(out))
    state = {"epoch": 0, "batch": 0, "tokens": 0, "first_val": None}
    step = 0
    latest = checkpoint.latest(run.path) if resume else None
    if latest is not None:
        saved = checkpoint.load(latest, model, optimizer, scheduler)
        if saved.get("fingerprint") != fingerprint:
            raise XuetuError(f"the corpus or settings changed since the checkpoint in {run.path}",
                             "Use a new --out for a new run.")
        state.update({k: saved[k] for k in state})
        step = saved["step"]
        if main:
            run.truncate_metrics(step)
            note(f"resuming {out} from step {step} of {total_steps}")

    def block_batch(starts) -> dict:
        ids = torch.from_numpy(np.stack([train_tokens[s:s + bs] for s in starts]).astype(np.int64))
        return {"input_ids": ids.to(device), "labels": ids.to(device),
                "attention_mask": torch.ones_like(ids).to(device)}

    def validate() -> float:
        loss_module.eval()
        total = count = 0.0
        with torch.no_grad():
            for i in range(0, len(val_blocks), args.batch_size):
                ids = torch.from_numpy(np.stack(val_blocks[i:i + args.batch_size]).astype(np.int64)).to(device)
                s, n = loss_module(input_ids=ids, labels=ids, attention_mask=torch.ones_like(ids))
                total, count = total + float(s), count + float(n)
        loss_module.train()
        return total / max(count, 1)

    if state["first_val"] is None:
        state["first_val"] = validate() if val_blocks else float("nan")
    if main:
        run.update(kind="pretrain", status="running", out=out, config=to_dict(args), total_steps=total_steps,
                   parameters=n_params, corpus_tokens=int(len(tokens)), started_at=run.info.get("started_at") or now())
        if step == 0:
            run.log({"step": 0, "val_loss": round(state["first_val"], 5)})
    # -- fit ----------------------------------------------------------------------------------------
    bar = None
    if main and progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total_steps, initial=step, desc=f"pretraining {out} ({n_params / 1e6:.1f}M)", unit="step",
                   dynamic_ncols=True)
    val = state["first_val"]
    try:
        tick = time.perf_counter()
        while step < total_steps:
            order = torch.randperm(n_blocks, generator=torch.Generator().manual_seed(args.seed * 1000 + state["epoch"]))
            starts = (order * bs).tolist()[rank::world]
            while state["batch"] + args.grad_accum <= batches_per_epoch and step < total_steps:
                step_loss = 0.0
                for j in range(args.grad_accum):
                    b = state["batch"] + j
                    batch = block_batch(starts[b * args.batch_size:(b + 1) * args.batch_size])
                    with accelerator.autocast():
                        total, n = loss_module(**batch)
                        loss = total / n
                    if not torch.isfinite(loss):
                        raise FloatingPointError(f"the loss became {float(loss)} at step {step + 1}")
                    accelerator.backward(loss / args.grad_accum)
                    step_loss += float(loss.detach()) / args.grad_accum
                accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                state["batch"] += args.grad_accum
                done_tokens = args.grad_accum * args.batch_size * bs * world
                state["tokens"] += done_tokens
                record = {"step": step, "loss": round(step_loss, 5), "lr": scheduler.get_last_lr()[0],
                          "tokens": state["tokens"], "tokens_per_s": round(done_tokens / (time.perf_counter() - tick), 1)}
                tick = time.perf_counter()
                if step % args.eval_every == 0 or step == total_steps:
                    val = validate()
                    record.update(val_loss=round(val, 5), val_ppl=round(math.exp(min(val, 50)), 2))
                if main:
                    run.log(record)
                    if bar is not None:
                        bar.set_postfix(loss=f"{step_loss:.3f}", val=f"{val:.3f}", tok_s=f"{record['tokens_per_s']:.0f}",
                                        refresh=False)
                        bar.update(1)
                if step % args.save_every == 0 or step == total_steps:
                    if main:
                        checkpoint.save(run.path, step, accelerator.unwrap_model(loss_module).model, optimizer,
                                        scheduler, {**state, "fingerprint": fingerprint})
                    accelerator.wait_for_everyone()
            if state["batch"] + args.grad_accum > batches_per_epoch:
                state["epoch"] += 1
                state["batch"] = 0
    except FloatingPointError as e:
        if main:
            run.update(status="failed", error=str(e))
        raise XuetuError(f"{e}: training stopped", "The last good checkpoint is kept; lower --set lr=… and rerun.") from None
    except torch.OutOfMemoryError as e:
        raise oom_error(e) from None
    finally:
        if bar is not None:
            bar.close()
    # -- save ---------------------------------------------------------------------------------------
    accelerator.wait_for_everyone()
    if main:
        final = run.path / "final"
        accelerator.unwrap_model(loss_module).model.save_pretrained(final)
        tokenizer.save_pretrained(final)
        models.create(out, final, progress=False)
        run.update(status="finished", finished_at=now(), steps=step, val_loss=val, first_val_loss=state["first_val"])
        run.plot()
    return Result(out, run.path, step, state["first_val"], val, n_params)


def main(argv: list[str] | None = None) -> None:
    """`python -m xuetu.train.pretrain --config recipe.yaml [--set key=value ...]` (for accelerate launch)."""
    import argparse

    from xuetu.train import args as targs

    ap = argparse.ArgumentParser(description="xuetu pretraining recipe")
    ap.add_argument("--config", default=None)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ns = ap.parse_args(argv)
    from xuetu.cli import console

    console.setup()  # this entry point is a command: the library's notes reach its terminal
    try:
        result = pretrain(targs.load(PretrainArgs, ns.config, ns.overrides))
    except XuetuError as e:
        print(f"Error: {e}", file=sys.stderr)
        sys.exit(1)
    print(f"pretrained {result.model}: validation loss {result.first_val:.3f} -> {result.val_loss:.3f}")


if __name__ == "__main__":
    main()
