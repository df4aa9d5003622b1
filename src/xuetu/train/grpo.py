"""GRPO: learn from rewards on the model's own answers, with no pairs and no reward model.

    xuetu finetune --method grpo --data prompts.jsonl --set 'align.rewards=regex:<answer>\\d+</answer>;exact'

set up (base, prompts, rewards) -> resume -> fit, each step in phases: sample (a group of answers per prompt,
from the model being trained) -> score (the rewards; each answer's advantage against its group) -> learn
(policy gradient with a per-token KL penalty against the reference: the base under the switched-off adapter,
or a frozen copy when all weights train) -> save. Curves: mean reward, KL to the reference, loss.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from dataclasses import dataclass

import torch
from torch import nn

from xuetu.data.template import IGNORE
from xuetu.train import loop, methods
from xuetu.train.args import TrainArgs, to_dict
from xuetu.train.optim import build_optimizer, build_scheduler
from xuetu.train.prefs import label_logps, per_row
from xuetu.train.runs import now


@dataclass
class Task:
    """A prompt to answer: the chat messages, the prompt's text (for rewards), and its record's fields."""

    messages: list[dict]
    text: str
    example: dict


class GRPOLoss(nn.Module):
    """-advantage x (probability ratio) + beta x KL, per token, averaged per answer, then over answers."""

    def __init__(self, model, beta: float, reference=None):
        super().__init__()
        self.model, self.beta = model, beta
        self.reference = [reference]  # a list: a frozen copy is not a submodule (not trained, not saved)
        self.metrics: dict = {}

    def forward(self, input_ids, labels, attention_mask, advantages):
        lp, row, rows = label_logps(self.model, input_ids, labels, attention_mask)
        with torch.no_grad(), _reference(self.model, self.reference[0]) as ref_model:
            ref_lp, _, _ = label_logps(ref_model, input_ids, labels, attention_mask)
        delta = ref_lp - lp
        kl = torch.exp(delta) - delta - 1  # the k3 estimator: unbiased, never negative
        per_token = -torch.exp(lp - lp.detach()) * advantages[row] + self.beta * kl
        counts = (labels[:, 1:] != IGNORE).sum(1).clamp(min=1)
        loss = (per_row(per_token, row, rows) / counts).mean()
        self.metrics = {"kl": float((per_row(kl.detach(), row, rows) / counts).mean())}
        return loss * rows, torch.tensor(rows, device=loss.device)


@contextlib.contextmanager
def _reference(model, copy):
    if copy is not None:
        yield copy
    else:
        with model.disable_adapter():
            yield model


def grpo(args: TrainArgs, resume: bool = True, progress: bool = True):
    from transformers.utils import logging as hf_logging

    from xuetu.train import finetune as ft
    from xuetu.train import rewards as rewarding

    hf_logging.set_verbosity_error()
    weights = methods.get(args.align.weights)
    scorer = rewarding.parse(args.align.rewards)
    base, out, run = ft.choose_base(args, progress)
    accelerator = loop.make_accelerator(args.precision)
    loop.seed_everything(args.seed)
    tokenizer = ft.load_tokenizer(base.hf_dir)
    tasks = read_tasks(args.data)
    model, _ = ft.load_model(weights, base.hf_dir, args, tokenizer, accelerator)
    reference = None if weights.ADAPTER else _frozen(weights, base.hf_dir, args, model)
    t = plan(args, accelerator, GRPOLoss(model, args.align.beta, reference), run, tasks)
    if resume:
        loop.resume(t, model, out, "the prompts or settings",
                    "Use a new --out for a new run, or restore the original prompts and settings.")
    trainable = [p for p in model.parameters() if p.requires_grad]
    if t.main:
        run.update(kind="align", status="running", out=out, base=base.name, method=args.method, config=to_dict(args),
                   total_steps=t.total_steps, started_at=run.info.get("started_at") or now(),
                   trainable_parameters=sum(p.numel() for p in trainable), prompts=len(tasks), pid=os.getpid(),
                   error=None)
    bar = loop.progress_bar(t, progress, f"grpo {out}")
    with contextlib.closing(bar) if bar else contextlib.nullcontext():
        last = fit(t, trainable, tasks, tokenizer, scorer, args, bar)
    accelerator.wait_for_everyone()
    whole = loop.final_weights(t)  # on every process: gathering a sharded model is collective
    if t.main:
        ft.save(t.trained_model(), tokenizer, weights.ADAPTER, base, out, run.path / "final", whole)
        run.update(status="finished", finished_at=now(), steps=t.step, train_loss=last)
        run.plot()
    accelerator.wait_for_everyone()
    return ft.Result(out, run.path, t.step, last, None)


def _frozen(weights, hf_dir, args, model):
    """All weights train: the reference is a frozen copy of the base (the one case with a second copy)."""
    ref = weights.load(hf_dir, args, next(model.parameters()).dtype).to(next(model.parameters()).device)
    ref.requires_grad_(False)
    return ref.eval()


def read_tasks(path: str) -> list[Task]:
    """The prompts of a file, each with its record's fields (a reference answer for `exact`, say)."""
    from xuetu.train.teacher import read_prompts

    return [Task(p.chat(), p.messages[-1]["content"], p.example) for p in read_prompts(path)]


def plan(args: TrainArgs, accelerator, loss_module, run, tasks: list[Task]) -> loop.Training:
    from xuetu.errors import XuetuError

    per_step = args.batch_size * args.grad_accum
    if len(tasks) < args.batch_size:
        raise XuetuError(f"{len(tasks)} prompts are fewer than one batch ({args.batch_size})",
                         "Give more prompts, or --set batch_size=… lower.")
    total = args.max_steps or max(1, round(len(tasks) * args.epochs / per_step))
    optimizer = build_optimizer(loss_module.model, args.lr, args.weight_decay)
    scheduler = build_scheduler(optimizer, total, args.warmup, args.schedule)
    loss_module, optimizer = accelerator.prepare(loss_module, optimizer)
    fingerprint = hashlib.sha256(repr(([t.text for t in tasks], total, to_dict(args.align), args.batch_size,
                                       args.grad_accum, accelerator.num_processes)).encode()).hexdigest()[:16]
    return loop.Training(accelerator, loss_module, optimizer, scheduler, run, total, fingerprint, {"epoch": 0, "micro": 0})


# -- fit: sample, score, learn ----------------------------------------------------------------------


def fit(t: loop.Training, trainable: list, tasks: list[Task], tokenizer, scorer, args: TrainArgs, bar) -> float | None:
    from xuetu.train.finetune import micro_batches

    c, last = t.counters, None
    rank, world = t.accelerator.process_index, t.accelerator.num_processes
    with loop.stopping_on_failure(t):
        while t.step < t.total_steps:
            mbs = micro_batches(len(tasks), args.batch_size, c["epoch"], args.seed)[rank::world]
            mbs = [mb for mb in mbs if len(mb) == args.batch_size] or mbs
            while c["micro"] < len(mbs) and t.step < t.total_steps:
                tick = time.perf_counter()
                window = mbs[c["micro"]:c["micro"] + args.grad_accum]
                record = step(t, trainable, [[tasks[i] for i in mb] for mb in window], tokenizer, scorer, args)
                record["seconds"] = round(time.perf_counter() - tick, 3)
                last = record["loss"]
                if t.main:
                    t.run.log(record)
                    if bar is not None:
                        bar.set_postfix(reward=f"{record['reward']:.2f}", kl=f"{record['kl']:.3f}", refresh=False)
                        bar.update(1)
                if t.step % args.save_every == 0 or t.step == t.total_steps:
                    loop.save_checkpoint(t)
            c["epoch"], c["micro"] = c["epoch"] + 1, 0
    return last


def step(t: loop.Training, trainable: list, window: list[list[Task]], tokenizer, scorer, args: TrainArgs) -> dict:
    """One optimizer step: for each micro-batch of prompts, sample a group of answers each, score, learn."""
    loss, sums = 0.0, {}
    module = t.accelerator.unwrap_model(t.loss_module)
    for j, batch_tasks in enumerate(window):
        # under FSDP sampling is a forward of the sharded model: every process gathers the root's weights, and
        # generation runs in step on all of them (synced_gpus) until the longest answer anywhere is done
        with loop.whole_root(t):
            rows, answers = sample(module.model, tokenizer, batch_tasks, args.align, synced=loop.sharded(t.accelerator))
        rewards, parts = score(scorer, batch_tasks, answers, args.align.group)
        batch = rows | {"advantages": advantages(rewards, args.align.group)}
        batch = {k: v.to(t.accelerator.device) for k, v in batch.items()}
        loss += loop.micro_step(t, batch, len(window), sync=j == len(window) - 1) / len(window)
        found = {"reward": float(rewards.mean()), "reward_std": float(rewards.std()), **module.metrics,
                 **{f"reward_{k}": v for k, v in parts.items()}}
        for k, v in found.items():
            sums[k] = sums.get(k, 0.0) + v / len(window)
    grad_norm = loop.optimizer_step(t, trainable, args.max_grad_norm)
    t.counters["micro"] += len(window)
    return {"step": t.step, "epoch": t.counters["epoch"], "loss": round(loss, 5), "lr": t.scheduler.get_last_lr()[0],
            "grad_norm": round(grad_norm, 4), **{k: round(v, 5) for k, v in sums.items()}}


def sample(model, tokenizer, tasks: list[Task], a, synced: bool = False) -> tuple[dict, list[str]]:
    """`a.group` answers per prompt from the model as it is now; the rows to learn from (prompt + answer, labels on
    the answer and its end-of-turn) and the answers' text."""
    prompts = [tokenizer.apply_chat_template(task.messages, tokenize=False, add_generation_prompt=True) for task in tasks]
    tokenizer.padding_side = "left"
    enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = model.generate(**enc, do_sample=True, temperature=a.temperature, max_new_tokens=a.max_new_tokens,
                             num_return_sequences=a.group, pad_token_id=tokenizer.pad_token_id, synced_gpus=synced)
    model.train(was_training)
    tokenizer.padding_side = "right"
    width = enc["input_ids"].shape[1]
    prompt_ids = [ids[mask.bool()].tolist() for ids, mask in zip(enc["input_ids"], enc["attention_mask"])]
    rows, texts = [], []
    for i, seq in enumerate(out):
        answer = _until_end(seq[width:].tolist(), tokenizer)
        texts.append(tokenizer.decode(answer, skip_special_tokens=True).strip())
        rows.append((prompt_ids[i // a.group], answer))
    return _collate(rows, tokenizer.pad_token_id), texts


def _until_end(ids: list[int], tokenizer) -> list[int]:
    """The answer up to and including its end-of-turn token (which is learnt too), without padding."""
    ends = {tokenizer.eos_token_id} | set(
        tokenizer.convert_tokens_to_ids([t for t in ("<|im_end|>", "<|eot_id|>") if t in tokenizer.get_vocab()]))
    for k, tid in enumerate(ids):
        if tid in ends:
            return ids[:k + 1]
        if tid == tokenizer.pad_token_id:
            return ids[:k]
    return ids


def _collate(rows: list[tuple[list[int], list[int]]], pad: int) -> dict:
    width = max(len(p) + len(a) for p, a in rows)
    input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (p, a) in enumerate(rows):
        input_ids[i, :len(p) + len(a)] = torch.tensor(p + a)
        labels[i, len(p):len(p) + len(a)] = torch.tensor(a, dtype=torch.long)
        mask[i, :len(p) + len(a)] = 1
    return {"input_ids": input_ids, "labels": labels, "attention_mask": mask}


def score(scorer, tasks: list[Task], answers: list[str], group: int) -> tuple[torch.Tensor, dict]:
    """Each answer's total reward, and the mean of each reward's part."""
    totals, parts = [], {}
    for i, answer in enumerate(answers):
        task = tasks[i // group]
        total, found = scorer.score(task.text, answer, task.example)
        totals.append(total)
        for k, v in found.items():
            parts[k] = parts.get(k, 0.0) + v / len(answers)
    return torch.tensor(totals, dtype=torch.float32), parts


def advantages(rewards: torch.Tensor, group: int) -> torch.Tensor:
    """Each answer's reward against its group: (r - mean) / (std + 1e-4); a group that all scored the same
    teaches nothing (advantage 0)."""
    g = rewards.view(-1, group)
    return ((g - g.mean(1, keepdim=True)) / (g.std(1, keepdim=True) + 1e-4)).view(-1)
