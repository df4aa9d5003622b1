"""Fine-tune a model on your data with any registered method (LoRA, QLoRA, full, prompt or prefix tuning).

    xuetu finetune --model smollm2:135m --data facts.jsonl --method lora --out facts
    accelerate launch --config_file recipes/accelerate/ddp.yaml -m xuetu.train.finetune --config recipe.yaml

set up (base model, data, method) -> resume (the last checkpoint) -> fit (own loop on Accelerate: packing,
accumulation, clipping, schedule, validation, checkpoints, early stopping) -> save (a new model in the
store) -> evaluate (base vs tuned). The phases every recipe shares are in train/loop.py.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from xuetu import models
from xuetu.errors import XuetuError
from xuetu.models.names import parse_name
from xuetu.notify import note, warn
from xuetu.train import attention, loop, methods
from xuetu.train.args import TrainArgs, to_dict
from xuetu.train.examples import ExampleReport, build_examples, ensure_template, require_answers, split_records
from xuetu.train.fused_lora import fused_lora
from xuetu.train.loop import cpu_has_bf16, mixed_precision, oom_error, seed_everything, sharded  # noqa: F401
from xuetu.train.loss import CausalLMLoss
from xuetu.train.optim import build_optimizer, build_scheduler
from xuetu.train.packing import collate, one_per_sequence, pack_sequences
from xuetu.train.runs import Run, now, run_dir

# `build_loss(model, packed, examples)` makes the loss module instead of CausalLMLoss (distillation does);
# like CausalLMLoss its forward returns (summed loss, label count).
LossFactory = Callable[[Any, bool, list], Any]


@dataclass
class Result:
    model: str
    run: Path
    steps: int
    train_loss: float | None
    val_loss: float | None
    stopped_early: bool = False


@dataclass
class Data:
    """The training and validation split, as records, examples and (packed) sequences."""

    train_records: list
    val_records: list
    train_examples: list
    val_examples: list
    report: ExampleReport
    seqs: list
    val_seqs: list
    packed: bool


@dataclass
class Fitted:
    """How the fit phase ended."""

    train_loss: float | None = None
    val_loss: float | None = None
    stopped_early: bool = False


def micro_batches(n_seqs: int, batch_size: int, epoch: int, seed: int) -> list[list[int]]:
    """This epoch's micro-batches: a seeded shuffle, the same on every process and on resume."""
    order = torch.randperm(n_seqs, generator=torch.Generator().manual_seed(seed * 1000 + epoch)).tolist()
    return [order[i:i + batch_size] for i in range(0, n_seqs, batch_size)]


def finetune(args: TrainArgs, resume: bool = True, progress: bool = True, build_loss: LossFactory | None = None,
             kind: str = "finetune", run_info: dict | None = None) -> Result:
    """Train `args.model` on `args.data`. `build_loss` may make the loss module (see LossFactory); `kind` and
    `run_info` go into run.json."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    # -- set up the model and data --------------------------------------------------------------------
    method = methods.get(args.method)
    if getattr(method, "ALIGN", False):  # preference and reward objectives have their own recipes
        from xuetu.train.align import align
        from xuetu.train.grpo import grpo

        return (grpo if getattr(method, "REWARDED", False) else align)(args, resume=resume, progress=progress)
    if hasattr(method, "check_available"):
        method.check_available()
    base, out, run = choose_base(args, progress)
    accelerator = loop.make_accelerator(args.precision)
    seed_everything(args.seed)
    tokenizer = load_tokenizer(base.hf_dir)
    data = load_data(args, tokenizer, args.pack and method.PACKING, accelerator.is_main_process)
    model, dtype = load_model(method, base.hf_dir, args, tokenizer, accelerator)
    loss_module = (build_loss(model, data.packed, data.train_examples + data.val_examples) if build_loss
                   else CausalLMLoss(model, efficient=data.packed, fused=not sharded(accelerator)))
    t, per_rank = plan(args, accelerator, model, loss_module, run, data.seqs)
    # -- resume ---------------------------------------------------------------------------------------
    if resume:
        loop.resume(t, model, out, "the data or settings",
                    "Use a new --out for a new run, or restore the original data and settings.")
    trainable = [p for p in model.parameters() if p.requires_grad]
    if t.main:
        run.update(kind=kind, status="running", out=out, base=base.name, method=args.method,
                   config=to_dict(args), total_steps=t.total_steps, started_at=run.info.get("started_at") or now(),
                   trainable_parameters=sum(p.numel() for p in trainable), examples=to_dict(data.report),
                   sequences=len(data.seqs), packed=data.packed, pid=os.getpid(), error=None, **(run_info or {}))
    # -- fit ------------------------------------------------------------------------------------------
    to_batch = Batcher(tokenizer.pad_token_id, dtype, data.packed and not attention.supports(model), accelerator.device)
    bar = loop.progress_bar(t, progress, f"training {out}")
    with packed_attention(model, data.packed), contextlib.closing(bar) if bar else contextlib.nullcontext():
        fitted = fit(t, trainable, data, to_batch, per_rank, args, bar)
    # -- save and evaluate ----------------------------------------------------------------------------
    accelerator.wait_for_everyone()
    weights = loop.final_weights(t)  # on every process: gathering a sharded model is collective
    if t.main:
        save(t.trained_model(), tokenizer, method.ADAPTER, base, out, run.path / "final", weights)
        should_evaluate = bool(args.evaluate and data.val_records)
        run.update(status="evaluating" if should_evaluate else "finished", finished_at=now(), steps=t.step,
                   train_loss=fitted.train_loss, val_loss=fitted.val_loss, stopped_early=fitted.stopped_early)
        run.plot()
        if should_evaluate:
            from xuetu.train.report import compare_base_and_tuned

            compare_base_and_tuned(run, base, models.resolve(out), data.val_records, tokenizer, args, progress=progress)
            run.update(status="finished")
    accelerator.wait_for_everyone()
    return Result(out, run.path, t.step, fitted.train_loss, fitted.val_loss, fitted.stopped_early)


# -- set up -----------------------------------------------------------------------------------------


def choose_base(args: TrainArgs, progress: bool):
    """The base model (trainable weights, not an adapter), the new model's name, and its run folder."""
    if not args.data:
        raise XuetuError("no training data: pass --data PATH")
    base = models.resolve(args.model, pull_missing=True, progress=progress)
    if base.adapter_dir is not None:
        raise XuetuError(f"{base.name} is itself an adapter", f"Fine-tune its base, {base.base}, instead.")
    if base.hf_dir is None:
        raise XuetuError(f"{base.name} has only a GGUF file, which cannot be trained",
                         "Pull the Hugging Face version of the model (safetensors).")
    out = str(parse_name(args.out or f"{base.name.split(':')[0].split('/')[-1]}-{args.method}"))
    run = Run(run_dir(out))
    loop.refuse_if_trained(run, out)
    return base, out, run


def load_tokenizer(hf_dir: Path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_data(args: TrainArgs, tokenizer, pack: bool, main: bool) -> Data:
    """Records -> chat-templated examples -> sequences (several examples packed in each when `pack`)."""
    import xuetu.data

    records = list(xuetu.data.load(args.data))
    if (template_note := ensure_template(tokenizer, records)) and main:
        warn(template_note)
    if args.val_data:
        train_records, val_records = records, list(xuetu.data.load(args.val_data))
    else:
        train_records, val_records = split_records(records, args.val_fraction, args.seed)
    train_ex, report = build_examples(train_records, tokenizer, args.max_length, args.truncation, args.system_prompt)
    require_answers(train_records, report, args.data)
    val_ex, _ = build_examples(val_records, tokenizer, args.max_length, args.truncation, args.system_prompt)
    if main and (report.truncated or report.dropped_too_long or report.dropped_no_answer):
        warn(f"{report.truncated} examples truncated to {args.max_length} tokens, {report.dropped_too_long} dropped "
             f"as too long, {report.dropped_no_answer} dropped with no answer left")
    pack_length = args.max_length
    if pack:
        # Packing must not turn a small dataset into a couple of giant batches (one step per epoch): keep
        # about 8 micro-batches per epoch, never shorter than the longest example (nothing is cut).
        longest = max(len(e.input_ids) for e in train_ex)
        per_batch = sum(len(e.input_ids) for e in train_ex) // (args.batch_size * 8 * max(1, args.grad_accum))
        pack_length = max(longest, min(args.max_length, per_batch))
    seqs = pack_sequences(train_ex, pack_length) if pack else one_per_sequence(train_ex)
    val_seqs = pack_sequences(val_ex, pack_length) if pack else one_per_sequence(val_ex)
    return Data(train_records, val_records, train_ex, val_ex, report, seqs, val_seqs, pack)


def load_model(method, hf_dir: Path, args: TrainArgs, tokenizer, accelerator):
    """The base model as the method loads and prepares it, and the dtype its frozen weights are kept in."""
    # With bf16 (a GPU's default, a CPU's choice) an adapter's frozen base is stored in bf16, so autocast does not
    # cast it at every matrix multiply; its weights take half the bytes (on a CPU a run's peak memory was not lower
    # than in fp32: benchmarks/RESULTS.md, LoRA training). The trained weights stay fp32 (PEFT keeps adapters in
    # fp32) and autocast computes in bf16. A full fine-tune keeps fp32 master weights.
    bf16_base = accelerator.mixed_precision == "bf16" and method.ADAPTER
    dtype = torch.bfloat16 if bf16_base else torch.float32
    if accelerator.is_main_process and args.precision == "auto" and not torch.cuda.is_available() and cpu_has_bf16():
        note("this CPU has bf16 units; --set precision=bf16 trained LoRA faster in our benchmarks "
             "(benchmarks/RESULTS.md)")
    model = method.load(hf_dir, args, dtype)
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        if hasattr(model, "enable_input_require_grads"):
            model.enable_input_require_grads()
    return method.prepare(model, args, tokenizer), dtype


def plan(args: TrainArgs, accelerator, model, loss_module, run: Run, seqs: list) -> tuple[loop.Training, int]:
    """Optimizer, schedule and step count, prepared by the accelerator; and micro-batches per process and epoch."""
    optimizer = build_optimizer(model, args.lr, args.weight_decay)
    world = accelerator.num_processes
    per_rank = len(micro_batches(len(seqs), args.batch_size, 0, args.seed)) // world
    if per_rank == 0:
        raise XuetuError(f"too little data for {world} processes: {len(seqs)} sequences")
    steps_per_epoch = math.ceil(per_rank / args.grad_accum)
    total_steps = args.max_steps or max(1, math.ceil(steps_per_epoch * args.epochs))
    if not args.max_steps and total_steps < args.min_steps:
        if accelerator.is_main_process:
            warn(f"{args.epochs:g} epochs of this data are only {total_steps} steps; training "
                 f"{args.min_steps} steps ({args.min_steps / steps_per_epoch:.0f} epochs) so a small dataset is learnt "
                 "(set min_steps=0 to turn this off)")
        total_steps = args.min_steps
    scheduler = build_scheduler(optimizer, total_steps, args.warmup, args.schedule)
    loss_module, optimizer = accelerator.prepare(loss_module, optimizer)
    fingerprint = hashlib.sha256(repr((len(seqs), sum(len(s.input_ids) for s in seqs), total_steps, args.method,
                                       args.batch_size, args.grad_accum, args.max_length, world)).encode()).hexdigest()[:16]
    counters = {"epoch": 0, "micro": 0, "tokens": 0, "best_val": None, "bad_evals": 0}
    return loop.Training(accelerator, loss_module, optimizer, scheduler, run, total_steps, fingerprint, counters), per_rank


# -- fit --------------------------------------------------------------------------------------------


@dataclass
class Batcher:
    """Sequences -> a batch on the device. Packed rows keep their examples apart by restarting position ids;
    where the model's attention allows, each example attends only within itself (no (T, T) mask), else a
    block-diagonal 4D mask (`four_d`) does it."""

    pad: int
    dtype: torch.dtype
    four_d: bool
    device: Any

    def __call__(self, seqs: list) -> dict:
        return {k: v.to(self.device) for k, v in collate(seqs, self.pad, self.dtype, self.four_d).items()}

    def tokens(self, batch: dict) -> int:
        return int((batch["input_ids"] != self.pad).sum()) if self.four_d else int(batch["attention_mask"].sum())


@contextlib.contextmanager
def packed_attention(model, packed: bool):
    """Packed attention (where the model allows it) and fused LoRA while training; the model's own after,
    since generation after training uses the model's own attention again."""
    with contextlib.ExitStack() as stack:
        if packed and attention.supports(model):
            stack.enter_context(attention.use_packed_attention(model))
        stack.enter_context(fused_lora(model))
        yield


def fit(t: loop.Training, trainable: list, data: Data, to_batch: Batcher, per_rank: int, args: TrainArgs,
        bar) -> Fitted:
    """Optimizer steps until the step count, the early-stopping patience or the time budget is spent."""
    c = t.counters
    world, rank = t.accelerator.num_processes, t.accelerator.process_index
    eval_every = args.eval_every or math.ceil(per_rank / args.grad_accum)
    t.loss_module.train()
    fitted = Fitted()
    tick = began = time.perf_counter()
    with loop.stopping_on_failure(t):
        while t.step < t.total_steps:
            mbs = micro_batches(len(data.seqs), args.batch_size, c["epoch"], args.seed)[rank::world][:per_rank]
            while c["micro"] < len(mbs) and t.step < t.total_steps:
                window = mbs[c["micro"]:c["micro"] + args.grad_accum]
                record, fitted.train_loss = train_step(t, trainable, [[data.seqs[i] for i in mb] for mb in window],
                                                       to_batch, args.max_grad_norm, tick)
                tick = time.perf_counter()
                end_of_epoch = c["micro"] >= len(mbs)
                if t.step % eval_every == 0 or end_of_epoch or t.step == t.total_steps:
                    validate(t, data.val_seqs, to_batch, args.batch_size, record, fitted)
                if t.main:
                    t.run.log(record)
                    show(bar, record)
                if end_of_epoch:
                    c["epoch"] += 1
                    c["micro"] = 0
                if t.step % args.save_every == 0 or t.step == t.total_steps:
                    loop.save_checkpoint(t)
                if should_stop(t, args, began):
                    fitted.stopped_early = True
                    if t.step % args.save_every != 0 and t.step != t.total_steps:
                        loop.save_checkpoint(t)
                    break
            if fitted.stopped_early:
                break
            if c["micro"] >= len(mbs):
                c["epoch"] += 1
                c["micro"] = 0
    return fitted


def train_step(t: loop.Training, trainable: list, window: list[list], to_batch: Batcher, max_grad_norm: float,
               tick: float) -> tuple[dict, float]:
    """One optimizer step over an accumulation window of micro-batches (lists of sequences); its metrics
    record, and its mean loss unrounded."""
    c = t.counters
    window_loss = 0.0
    window_tokens = 0
    for j, seqs in enumerate(window):
        batch = to_batch(seqs)
        window_loss += loop.micro_step(t, batch, len(window), sync=j == len(window) - 1) / len(window)
        window_tokens += to_batch.tokens(batch)
    grad_norm = loop.optimizer_step(t, trainable, max_grad_norm)
    c["micro"] += len(window)
    c["tokens"] += window_tokens
    elapsed = time.perf_counter() - tick
    world = t.accelerator.num_processes
    record = {"step": t.step, "epoch": c["epoch"], "loss": round(window_loss, 5), "seconds": round(elapsed, 4),
              "lr": t.scheduler.get_last_lr()[0], "grad_norm": round(grad_norm, 4), "tokens": c["tokens"],
              "tokens_per_s": round(window_tokens * world / max(elapsed, 1e-9), 1)}
    return record, window_loss


def validate(t: loop.Training, val_seqs: list, to_batch: Batcher, batch_size: int, record: dict,
             fitted: Fitted) -> None:
    """Validation loss into the record; the best so far and the evaluations since, for early stopping."""
    if not val_seqs:
        return
    c = t.counters
    val = loop.validation_loss(t, (to_batch(val_seqs[i:i + batch_size]) for i in range(0, len(val_seqs), batch_size)))
    fitted.val_loss = val
    record.update(val_loss=round(val, 5), val_ppl=round(math.exp(min(val, 50)), 3))
    if c["best_val"] is None or val < c["best_val"] - 1e-4:
        c["best_val"], c["bad_evals"] = val, 0
    else:
        c["bad_evals"] += 1


def show(bar, record: dict) -> None:
    if bar is not None:
        bar.set_postfix(loss=f"{record['loss']:.3f}", lr=f"{record['lr']:.1e}",
                        tok_s=f"{record['tokens_per_s']:.0f}", refresh=False)
        bar.update(1)


def should_stop(t: loop.Training, args: TrainArgs, began: float) -> bool:
    """Early stopping's patience, or the time budget, is spent."""
    out_of_time = args.max_minutes is not None and time.perf_counter() - began > args.max_minutes * 60
    if out_of_time and t.main:
        warn(f"the time budget of {args.max_minutes:g} minutes is spent: stopping at step {t.step} "
             f"of {t.total_steps}")
    return bool(args.early_stopping and t.counters["bad_evals"] >= args.early_stopping) or out_of_time


# -- save -------------------------------------------------------------------------------------------


def save(trained, tokenizer, adapter: bool, base, out: str, final: Path, weights: dict | None = None) -> None:
    """The trained weights into the run folder, and from there a new model in the store: an adapter over
    the base, or a whole model. `weights` is the whole state dict gathered under FSDP or DeepSpeed
    (loop.final_weights), where `trained` itself holds only this process's shard."""
    trained.save_pretrained(final, state_dict=weights)
    if adapter:
        if tokenizer.chat_template and not _has_template(base.hf_dir):
            tokenizer.save_pretrained(final)  # the fallback template travels with the adapter
        models.create(out, final, base=base.name, progress=False)
    else:
        tokenizer.save_pretrained(final)
        models.create(out, final, progress=False, overrides={"params": base.params})


def _has_template(hf_dir: Path) -> bool:
    from xuetu.models.sources import has_chat_template

    return has_chat_template(hf_dir)


def main(argv: list[str] | None = None) -> None:
    """`python -m xuetu.train.finetune --config recipe.yaml [--set key=value ...]` (for accelerate launch)."""
    import argparse

    from xuetu import notify
    from xuetu.train import args as targs

    ap = argparse.ArgumentParser(description="xuetu fine-tuning recipe")
    ap.add_argument("--config", default=None)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--no-resume", action="store_true")
    ns = ap.parse_args(argv)
    notify.to_terminal()  # this entry point is a command: the library's notes reach its terminal
    try:
        result = finetune(targs.load(TrainArgs, ns.config, ns.overrides), resume=not ns.no_resume)
    except XuetuError as e:
        print(f"Error: {e}", file=sys.stderr)
        sys.exit(1)
    print(f"trained {result.model} in {result.steps} steps (run {result.run})")


if __name__ == "__main__":
    main()
