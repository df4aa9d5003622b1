"""Preference training: teach a model which of two answers to prefer (DPO, ORPO, SimPO) or which answers are
desirable (KTO), with LoRA or all weights.

    xuetu finetune --method dpo --data pairs.jsonl --out polite
    xuetu finetune --method kto --data labelled.jsonl --set align.beta=0.2 --set align.weights=full

set up (base, pairs, objective) -> reference (log-probabilities of the untrained model, computed once and
cached in the run folder; with LoRA the base is the adapter switched off, never a second copy) -> resume ->
fit (the shared loop phases: accumulation, clipping, schedule, validation, checkpoints) -> save -> evaluate
(held-out preference accuracy, base against tuned). Curves: loss, chosen and rejected rewards, their margin,
and preference accuracy.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from xuetu.notify import note, warn
from xuetu.train import attention, loop, methods
from xuetu.train.args import TrainArgs, to_dict
from xuetu.train.examples import ensure_template, split_records
from xuetu.train.optim import build_optimizer, build_scheduler
from xuetu.train.prefs import Logps, PrefExample, build_pref_examples, collate_prefs, sequence_logps
from xuetu.train.runs import Run, now

REF_BATCH = 8


@dataclass
class PrefData:
    train: list[PrefExample]
    val: list[PrefExample]
    report: Any


class PreferenceLoss(nn.Module):
    """The objective as a module (so accelerate's wrappers see a plain forward): (loss x rows, rows), and the
    batch's metrics kept in `metrics` for the curves."""

    def __init__(self, model, objective, a):
        super().__init__()
        self.model, self.objective, self.a = model, objective, a
        self.metrics: dict = {}

    def forward(self, input_ids, labels, attention_mask, position_ids=None, ref_sum=None, ref_mean=None,
                ref_tokens=None, desirable=None):
        policy = sequence_logps(self.model, input_ids, labels, attention_mask, position_ids)
        ref = Logps(ref_sum, ref_mean, ref_tokens) if ref_sum is not None else None
        loss, self.metrics = self.objective.loss(policy, ref, desirable, self.a)
        n = torch.tensor(policy.sum.shape[0] // 2, device=loss.device)
        return loss * n, n


def align(args: TrainArgs, resume: bool = True, progress: bool = True):
    """Train `args.model` on the preference data `args.data` with the objective `args.method`."""
    from transformers.utils import logging as hf_logging

    from xuetu.train import finetune as ft

    hf_logging.set_verbosity_error()
    objective, weights = methods.get(args.method), methods.get(args.align.weights)
    if hasattr(weights, "check_available"):
        weights.check_available()
    base, out, run = ft.choose_base(args, progress)
    accelerator = loop.make_accelerator(args.precision)
    loop.seed_everything(args.seed)
    tokenizer = ft.load_tokenizer(base.hf_dir)
    data = load_prefs(args, tokenizer, objective.PAIRED, accelerator.is_main_process)
    model, _ = ft.load_model(weights, base.hf_dir, args, tokenizer, accelerator)
    # Each batch's sequences go in one row, without padding, where the model's attention can keep them apart.
    batcher = Batcher(tokenizer.pad_token_id, {}, objective.REFERENCE, accelerator.device, attention.supports(model))
    with ft.packed_attention(model, batcher.packed):
        batcher.refs = reference_logps(model, data.train + data.val if objective.REFERENCE else data.val, batcher, run,
                                       progress and accelerator.is_main_process)
    t = plan(args, accelerator, PreferenceLoss(model, objective, args.align), run, data)
    if resume:
        loop.resume(t, model, out, "the data or settings",
                    "Use a new --out for a new run, or restore the original data and settings.")
    trainable = [p for p in model.parameters() if p.requires_grad]
    if t.main:
        run.update(kind="align", status="running", out=out, base=base.name, method=args.method, config=to_dict(args),
                   total_steps=t.total_steps, started_at=run.info.get("started_at") or now(),
                   trainable_parameters=sum(p.numel() for p in trainable), examples=to_dict(data.report),
                   pid=os.getpid(), error=None)
    bar = loop.progress_bar(t, progress, f"{args.method} {out}")
    with ft.packed_attention(model, batcher.packed), contextlib.closing(bar) if bar else contextlib.nullcontext():
        final = fit(t, trainable, data, batcher, args, bar)
    accelerator.wait_for_everyone()
    whole = loop.final_weights(t)  # on every process: gathering a sharded model is collective
    # a sharded model's forward is collective too: under FSDP every process evaluates, the main one reports
    evaluating = data.val and objective.PAIRED and (t.main or loop.sharded(accelerator))
    held_out = evaluate(t, data, batcher) if evaluating else {}
    if t.main:
        ft.save(t.trained_model(), tokenizer, weights.ADAPTER, base, out, run.path / "final", whole)
        run.update(status="finished", finished_at=now(), steps=t.step, train_loss=final, **held_out)
        run.plot()
    accelerator.wait_for_everyone()
    return ft.Result(out, run.path, t.step, final, None)


# -- set up -----------------------------------------------------------------------------------------


def load_prefs(args: TrainArgs, tokenizer, paired: bool, main: bool) -> PrefData:
    import xuetu.data
    from xuetu.errors import XuetuError

    records = list(xuetu.data.load(args.data))
    if not records or not all(r.is_preference for r in records):
        raise XuetuError(f"{args.data} is not preference data: {args.method} trains on chosen/rejected pairs"
                         + ("" if paired else " or on answers labelled desirable/undesirable"),
                         "Give prompt/chosen/rejected records (see docs/data.md), make them with `xuetu data pairs`, "
                         "or train answers with --method lora.")
    if (template_note := ensure_template(tokenizer, records)) and main:
        warn(template_note)
    if args.val_data:
        train_records, val_records = records, list(xuetu.data.load(args.val_data))
    else:
        train_records, val_records = split_records(records, args.val_fraction, args.seed)
    train, report = build_pref_examples(train_records, tokenizer, args.max_length, paired)
    val, _ = build_pref_examples(val_records, tokenizer, args.max_length, paired)
    if not train:
        raise XuetuError(f"no example of {args.data} fits: {report.dropped_too_long} longer than max_length, "
                         f"{report.dropped_same} with the same chosen and rejected answer",
                         "Raise --set max_length=…")
    if main and (report.dropped_too_long or report.dropped_same):
        warn(f"{report.dropped_too_long} examples dropped as longer than {args.max_length} tokens, "
             f"{report.dropped_same} pairs dropped with the same chosen and rejected answer")
    return PrefData(train, val, report)


def _fingerprint(examples: list[PrefExample], model) -> str:
    h = hashlib.sha256(str(getattr(model, "name_or_path", "")).encode())
    for ex in examples:
        for ids, labels in ex.rows():
            h.update(repr((ids, labels)).encode())
    return h.hexdigest()[:16]


def reference_logps(model, examples: list[PrefExample], batcher: "Batcher", run: Run, progress: bool) -> dict:
    """Per example, the untrained model's log-probabilities of both rows (sum, mean, tokens: (N, 2) each), from
    the cache in the run folder when its examples match. Objectives with a reference need them for the training
    and validation examples, the others only for validation (the base model's accuracy)."""
    path = run.path / "reference_logps.pt"
    key = _fingerprint(examples, model)
    if path.exists() and (cached := torch.load(path)).get("key") == key:
        return cached
    sums, means, counts = [], [], []
    bar = _bar(len(examples), progress)
    with torch.no_grad(), _reference(model):
        for i in range(0, len(examples), REF_BATCH):
            chunk = examples[i:i + REF_BATCH]
            lp = sequence_logps(model, **batcher.rows(chunk))
            (a, b) = lp.halves()
            sums.append(torch.stack([a.sum, b.sum], 1).float().cpu())
            means.append(torch.stack([a.mean, b.mean], 1).float().cpu())
            counts.append(torch.stack([a.tokens, b.tokens], 1).cpu())
            if bar:
                bar.update(len(chunk))
    if bar:
        bar.close()
    refs = {"key": key, "sum": torch.cat(sums), "mean": torch.cat(means), "tokens": torch.cat(counts)}
    run.path.mkdir(parents=True, exist_ok=True)
    torch.save(refs, path)
    return refs


def _bar(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="reference log-probabilities", unit="example", dynamic_ncols=True)


@contextlib.contextmanager
def _reference(model):
    """The reference model: the base under the adapter (switched off, no copy); all weights before training."""
    was_training = model.training
    model.eval()
    with model.disable_adapter() if hasattr(model, "disable_adapter") else contextlib.nullcontext():
        yield
    model.train(was_training)


def plan(args: TrainArgs, accelerator, loss_module, run: Run, data: PrefData) -> loop.Training:
    from xuetu.errors import XuetuError
    from xuetu.train.finetune import micro_batches

    optimizer = build_optimizer(loss_module.model, args.lr, args.weight_decay)
    world = accelerator.num_processes
    per_rank = len(micro_batches(len(data.train), args.batch_size, 0, args.seed)) // world
    if per_rank == 0:
        raise XuetuError(f"too little data for {world} processes: {len(data.train)} examples")
    steps_per_epoch = math.ceil(per_rank / args.grad_accum)
    total = args.max_steps or max(1, math.ceil(steps_per_epoch * args.epochs))
    if not args.max_steps and total < args.min_steps:
        total = args.min_steps
    scheduler = build_scheduler(optimizer, total, args.warmup, args.schedule)
    loss_module, optimizer = accelerator.prepare(loss_module, optimizer)
    fingerprint = hashlib.sha256(repr((_fingerprint(data.train, None), total, args.method, to_dict(args.align),
                                       args.batch_size, args.grad_accum, world)).encode()).hexdigest()[:16]
    counters = {"epoch": 0, "micro": 0, "tokens": 0, "per_rank": per_rank}
    return loop.Training(accelerator, loss_module, optimizer, scheduler, run, total, fingerprint, counters)


# -- fit --------------------------------------------------------------------------------------------


@dataclass
class Batcher:
    """Example indices -> a batch on the device, with the reference log-probabilities of its rows."""

    pad: int
    refs: dict
    reference: bool
    device: Any
    packed: bool = False
    """One row per batch, no padding (under ft.packed_attention), or one padded row per sequence."""

    def rows(self, examples: list[PrefExample]) -> dict:
        """The sequences of `examples`, on the device, without reference log-probabilities."""
        return {k: v.to(self.device) for k, v in collate_prefs(examples, self.pad, self.packed).items()}

    def __call__(self, examples: list[PrefExample], idx: list[int]) -> dict:
        batch = collate_prefs(examples, self.pad, self.packed)
        if self.reference:
            for name in ("sum", "mean", "tokens"):
                batch[f"ref_{name}"] = torch.cat([self.refs[name][idx, 0], self.refs[name][idx, 1]])
        if examples[0].label is not None:
            batch["desirable"] = torch.tensor([bool(ex.label) for ex in examples])
        return {k: v.to(self.device) for k, v in batch.items()}


def fit(t: loop.Training, trainable: list, data: PrefData, batcher: Batcher, args: TrainArgs, bar) -> float | None:
    """Optimizer steps until the step count or the time budget is spent; the last step's loss."""
    from xuetu.train.finetune import micro_batches

    c = t.counters
    world, rank = t.accelerator.num_processes, t.accelerator.process_index
    eval_every = args.eval_every or math.ceil(c["per_rank"] / args.grad_accum)
    began = tick = time.perf_counter()
    last = None
    t.loss_module.train()
    with loop.stopping_on_failure(t):
        while t.step < t.total_steps:
            mbs = micro_batches(len(data.train), args.batch_size, c["epoch"], args.seed)[rank::world][:c["per_rank"]]
            while c["micro"] < len(mbs) and t.step < t.total_steps:
                window = mbs[c["micro"]:c["micro"] + args.grad_accum]
                record = step(t, trainable, data.train, window, batcher, args.max_grad_norm, tick)
                last, tick = record["loss"], time.perf_counter()
                if t.step % eval_every == 0 or t.step == t.total_steps:
                    record.update(validate(t, data.val, batcher, args.batch_size, len(data.train)))
                if t.main:
                    t.run.log(record)
                    _show(bar, record)
                if t.step % args.save_every == 0 or t.step == t.total_steps:
                    loop.save_checkpoint(t)
                if args.max_minutes is not None and time.perf_counter() - began > args.max_minutes * 60:
                    warn(f"the time budget of {args.max_minutes:g} minutes is spent: stopping at step {t.step}")
                    loop.save_checkpoint(t)
                    return last
            c["epoch"], c["micro"] = c["epoch"] + 1, 0
    return last


def step(t: loop.Training, trainable: list, examples: list, window: list[list[int]], batcher: Batcher,
         max_grad_norm: float, tick: float) -> dict:
    """One optimizer step over an accumulation window; its record for the curves."""
    c = t.counters
    loss, tokens, seen = 0.0, 0, []
    for j, idx in enumerate(window):
        batch = batcher([examples[i] for i in idx], idx)
        loss += loop.micro_step(t, batch, len(window), sync=j == len(window) - 1) / len(window)
        tokens += int(batch["attention_mask"].sum())
        seen.append(t.accelerator.unwrap_model(t.loss_module).metrics)
    sums = _mean_metrics(seen)
    grad_norm = loop.optimizer_step(t, trainable, max_grad_norm)
    c["micro"] += len(window)
    c["tokens"] += tokens
    elapsed = time.perf_counter() - tick
    return {"step": t.step, "epoch": c["epoch"], "loss": round(loss, 5), "seconds": round(elapsed, 4),
            "lr": t.scheduler.get_last_lr()[0], "grad_norm": round(grad_norm, 4), "tokens": c["tokens"],
            "tokens_per_s": round(tokens * t.accelerator.num_processes / max(elapsed, 1e-9), 1),
            **{k: round(v, 5) for k, v in sums.items()}}


def _mean_metrics(records: list[dict], weights: list[float] | None = None) -> dict:
    """Each metric averaged over the batches that measured it (KTO's batch may lack one kind of answer)."""
    weights = weights or [1.0] * len(records)
    keys = {k for r in records for k in r}
    return {k: sum(w * r[k] for r, w in zip(records, weights) if k in r)
            / sum(w for r, w in zip(records, weights) if k in r) for k in keys}


def validate(t: loop.Training, val: list[PrefExample], batcher: Batcher, batch_size: int, offset: int) -> dict:
    """Held-out loss, margin and accuracy (as val_*)."""
    if not val:
        return {}
    module = t.accelerator.unwrap_model(t.loss_module)
    t.loss_module.eval()
    seen, weights = [], []
    with torch.no_grad():
        for i in range(0, len(val), batch_size):
            idx = list(range(offset + i, offset + min(i + batch_size, len(val))))
            s, k = t.loss_module(**batcher(val[i:i + batch_size], idx))
            seen.append({"loss": float(s) / float(k), **module.metrics})
            weights.append(float(k))
    t.loss_module.train()
    return {f"val_{name}": round(v, 5) for name, v in _mean_metrics(seen, weights).items()
            if name in ("loss", "margin", "accuracy")}


def _show(bar, record: dict) -> None:
    if bar is not None:
        bar.set_postfix(loss=f"{record['loss']:.3f}", acc=f"{record.get('accuracy', float('nan')):.2f}",
                        margin=f"{record.get('margin', float('nan')):.2f}", refresh=False)
        bar.update(1)


# -- evaluate ---------------------------------------------------------------------------------------


def evaluate(t: loop.Training, data: PrefData, batcher: Batcher) -> dict:
    """Held-out preference accuracy (mean per-token log-likelihood, chosen above rejected), base and tuned."""
    from xuetu.train.finetune import packed_attention

    model = t.trained_model()
    model.eval()
    tuned = []
    with torch.no_grad(), loop.whole_root(t), packed_attention(model, batcher.packed):
        for i in range(0, len(data.val), REF_BATCH):
            chunk = data.val[i:i + REF_BATCH]
            lp = sequence_logps(model, **batcher.rows(chunk))
            a, b = lp.halves()
            tuned.append((a.mean - b.mean).float().cpu())
    tuned_margin = torch.cat(tuned)
    base = batcher.refs["mean"][len(batcher.refs["mean"]) - len(data.val):]
    base_margin = base[:, 0] - base[:, 1]
    result = {"val_pairs": len(data.val),
              "base_preference_accuracy": round(float((base_margin > 0).float().mean()), 4),
              "tuned_preference_accuracy": round(float((tuned_margin > 0).float().mean()), 4),
              "base_margin": round(float(base_margin.mean()), 4), "tuned_margin": round(float(tuned_margin.mean()), 4)}
    if t.main:
        note(f"held-out preference accuracy: base {result['base_preference_accuracy']:.2f}, tuned "
             f"{result['tuned_preference_accuracy']:.2f} ({len(data.val)} pairs)")
    return result
