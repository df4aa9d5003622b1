"""Pretrain a small Llama- or Qwen2-style model from random weights on raw text (the seeds' 训练 step,
at toy scale), reusing an existing tokenizer.

    xuetu pretrain --config recipes/pretrain-tiny.yaml --data corpus/

set up (tokenizer, corpus -> token blocks, model from a config) -> resume (the last checkpoint) -> fit (own
loop) -> save (a base model). The phases every recipe shares are in train/loop.py.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from xuetu import models
from xuetu.errors import XuetuError
from xuetu.models.names import parse_name
from xuetu.train import loop
from xuetu.train.args import PretrainArgs, to_dict
from xuetu.train.loop import seed_everything, sharded
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
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    # -- set up the model and data --------------------------------------------------------------------
    if not args.data:
        raise XuetuError("no corpus: pass --data PATH (a folder of .txt/.md files works)")
    out = str(parse_name(args.out))
    tokenizer = load_tokenizer(args.tokenizer, progress)
    accelerator = loop.make_accelerator(args.precision)
    seed_everything(args.seed)
    corpus = Corpus.split(corpus_tokens(args.data, tokenizer), args)
    model = build_model(args.shape, tokenizer)
    n_params = sum(p.numel() for p in model.parameters())
    t, batches_per_epoch = plan(args, accelerator, model, corpus, n_params, Run(run_dir(out)))
    # -- resume, and the loss before training -----------------------------------------------------------
    if resume:
        loop.resume(t, model, out, "the corpus or settings", "Use a new --out for a new run.")
    if t.counters["first_val"] is None:
        t.counters["first_val"] = validate(t, corpus, args.batch_size) if corpus.val_blocks else float("nan")
    if t.main:
        t.run.update(kind="pretrain", status="running", out=out, config=to_dict(args), total_steps=t.total_steps,
                     parameters=n_params, corpus_tokens=corpus.n_tokens,
                     started_at=t.run.info.get("started_at") or now())
        if t.step == 0:
            t.run.log({"step": 0, "val_loss": round(t.counters["first_val"], 5)})
    # -- fit ------------------------------------------------------------------------------------------
    bar = loop.progress_bar(t, progress, f"pretraining {out} ({n_params / 1e6:.1f}M)")
    with contextlib.closing(bar) if bar else contextlib.nullcontext():
        val = fit(t, model, corpus, batches_per_epoch, args, bar)
    # -- save -----------------------------------------------------------------------------------------
    t.accelerator.wait_for_everyone()
    whole = loop.final_weights(t)  # on every process: gathering a sharded model is collective
    if t.main:
        final = t.run.path / "final"
        t.trained_model().save_pretrained(final, state_dict=whole)
        tokenizer.save_pretrained(final)
        models.create(out, final, progress=False)
        t.run.update(status="finished", finished_at=now(), steps=t.step, val_loss=val,
                     first_val_loss=t.counters["first_val"])
        t.run.plot()
    return Result(out, t.run.path, t.step, t.counters["first_val"], val, n_params)


def load_tokenizer(name: str, progress: bool):
    """The tokenizer of the model `name` (or of its base), for a base model: no chat template."""
    from transformers import AutoTokenizer

    source = models.resolve(name, pull_missing=True, progress=progress)
    holder = models.resolve(source.base) if source.base else source
    if holder.hf_dir is None:
        raise XuetuError(f"{source.name} has no Hugging Face tokenizer to reuse")
    tokenizer = AutoTokenizer.from_pretrained(holder.hf_dir)
    tokenizer.chat_template = None  # a freshly pretrained model is a base model
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


@dataclass
class Corpus:
    """The corpus's tokens, split: training tokens (cut into blocks as they are read) and validation blocks."""

    n_tokens: int
    train_tokens: np.ndarray  # (N,) int32
    n_blocks: int
    val_blocks: list  # of (block_size,) int32
    block_size: int

    @classmethod
    def split(cls, tokens: np.ndarray, args: PretrainArgs) -> "Corpus":
        n_val = int(len(tokens) * args.val_fraction)
        bs = args.block_size
        train_tokens, val_tokens = tokens[: len(tokens) - n_val], tokens[len(tokens) - n_val:]
        n_blocks = (len(train_tokens) - 1) // bs
        if n_blocks < args.batch_size:
            raise XuetuError(f"the corpus is too small: {len(tokens):,} tokens make {n_blocks} blocks of {bs}",
                             "Add text, or lower block_size / batch_size.")
        val_blocks = [val_tokens[i:i + bs] for i in range(0, len(val_tokens) - bs, bs)][:64]
        return cls(int(len(tokens)), train_tokens, n_blocks, val_blocks, bs)

    def batch(self, starts, device) -> dict:
        """The blocks starting at `starts`, as a batch whose labels are its inputs."""
        ids = torch.from_numpy(np.stack([self.train_tokens[s:s + self.block_size] for s in starts]).astype(np.int64))
        return {"input_ids": ids.to(device), "labels": ids.to(device),
                "attention_mask": torch.ones_like(ids).to(device)}


def plan(args: PretrainArgs, accelerator, model, corpus: Corpus, n_params: int, run: Run) -> tuple[loop.Training, int]:
    """Loss, optimizer, schedule and step count, prepared by the accelerator; and batches per process and epoch."""
    loss_module = CausalLMLoss(model, efficient=True, fused=not sharded(accelerator))
    optimizer = build_optimizer(model, args.lr, args.weight_decay)
    world = accelerator.num_processes
    batches_per_epoch = corpus.n_blocks // (args.batch_size * world)
    steps_per_epoch = max(1, batches_per_epoch // args.grad_accum)
    total_steps = args.max_steps or max(1, math.ceil(steps_per_epoch * args.epochs))
    scheduler = build_scheduler(optimizer, total_steps, args.warmup, args.schedule)
    loss_module, optimizer = accelerator.prepare(loss_module, optimizer)
    fingerprint = hashlib.sha256(repr((corpus.n_tokens, n_params, total_steps, args.block_size,
                                       world)).encode()).hexdigest()[:16]
    counters = {"epoch": 0, "batch": 0, "tokens": 0, "first_val": None}
    return loop.Training(accelerator, loss_module, optimizer, scheduler, run, total_steps, fingerprint,
                         counters), batches_per_epoch


def validate(t: loop.Training, corpus: Corpus, batch_size: int) -> float:
    device = t.accelerator.device
    blocks = corpus.val_blocks

    def batches():
        for i in range(0, len(blocks), batch_size):
            ids = torch.from_numpy(np.stack(blocks[i:i + batch_size]).astype(np.int64)).to(device)
            yield {"input_ids": ids, "labels": ids, "attention_mask": torch.ones_like(ids)}

    return loop.validation_loss(t, batches())


def fit(t: loop.Training, model, corpus: Corpus, batches_per_epoch: int, args: PretrainArgs, bar) -> float:
    """Optimizer steps over shuffled token blocks until the step count is reached; the last validation loss."""
    c = t.counters
    world, rank = t.accelerator.num_processes, t.accelerator.process_index
    bs, device = corpus.block_size, t.accelerator.device
    val = c["first_val"]
    with loop.stopping_on_failure(t):
        tick = time.perf_counter()
        while t.step < t.total_steps:
            order = torch.randperm(corpus.n_blocks, generator=torch.Generator().manual_seed(args.seed * 1000 + c["epoch"]))
            starts = (order * bs).tolist()[rank::world]
            while c["batch"] + args.grad_accum <= batches_per_epoch and t.step < t.total_steps:
                step_loss = 0.0
                for j in range(args.grad_accum):
                    b = c["batch"] + j
                    batch = corpus.batch(starts[b * args.batch_size:(b + 1) * args.batch_size], device)
                    step_loss += loop.micro_step(t, batch, args.grad_accum) / args.grad_accum
                loop.optimizer_step(t, model.parameters(), args.max_grad_norm)
                c["batch"] += args.grad_accum
                done_tokens = args.grad_accum * args.batch_size * bs * world
                c["tokens"] += done_tokens
                record = {"step": t.step, "loss": round(step_loss, 5), "lr": t.scheduler.get_last_lr()[0],
                          "tokens": c["tokens"], "tokens_per_s": round(done_tokens / (time.perf_counter() - tick), 1)}
                tick = time.perf_counter()
                if t.step % args.eval_every == 0 or t.step == t.total_steps:
                    val = validate(t, corpus, args.batch_size)
                    record.update(val_loss=round(val, 5), val_ppl=round(math.exp(min(val, 50)), 2))
                if t.main:
                    t.run.log(record)
                    if bar is not None:
                        bar.set_postfix(loss=f"{step_loss:.3f}", val=f"{val:.3f}",
                                        tok_s=f"{record['tokens_per_s']:.0f}", refresh=False)
                        bar.update(1)
                if t.step % args.save_every == 0 or t.step == t.total_steps:
                    loop.save_checkpoint(t)
            if c["batch"] + args.grad_accum > batches_per_epoch:
                c["epoch"] += 1
                c["batch"] = 0
    return val


def main(argv: list[str] | None = None) -> None:
    """`python -m xuetu.train.pretrain --config recipe.yaml [--set key=value ...]` (for accelerate launch)."""
    import argparse

    from xuetu import notify
    from xuetu.train import args as targs

    ap = argparse.ArgumentParser(description="xuetu pretraining recipe")
    ap.add_argument("--config", default=None)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ns = ap.parse_args(argv)
    notify.to_terminal()  # this entry point is a command: the library's notes reach its terminal
    try:
        result = pretrain(targs.load(PretrainArgs, ns.config, ns.overrides))
    except XuetuError as e:
        print(f"Error: {e}", file=sys.stderr)
        sys.exit(1)
    print(f"pretrained {result.model}: validation loss {result.first_val:.3f} -> {result.val_loss:.3f}")


if __name__ == "__main__":
    main()
