"""Fine-tune a model on your data: LoRA, QLoRA, full, prompt tuning or prefix tuning.

    xuetu finetune --model smollm2:135m --data facts.jsonl --method lora --out facts
    accelerate launch --config_file recipes/accelerate/ddp.yaml -m xuetu.train.finetune --config recipe.yaml

setup (model, data, method) -> fit (own loop on Accelerate: packing, accumulation, clipping, schedule,
validation, checkpoints, early stopping) -> save (a new model in the store) -> evaluate (base vs tuned).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from xuetu import models
from xuetu.errors import XuetuError
from xuetu.models.names import parse_name
from xuetu.train import attention, checkpoint, methods
from xuetu.train.args import TrainArgs, to_dict
from xuetu.notify import note, warn
from xuetu.train.examples import build_examples, ensure_template, require_answers, split_records
from xuetu.train.fused_lora import fused_lora
from xuetu.train.loss import CausalLMLoss
from xuetu.train.optim import build_optimizer, build_scheduler
from xuetu.train.packing import collate, one_per_sequence, pack_sequences
from xuetu.train.runs import Run, now, run_dir


@dataclass
class Result:
    model: str
    run: Path
    steps: int
    train_loss: float | None
    val_loss: float | None
    stopped_early: bool = False


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bf16 matrices natively (AVX512-BF16 or AMX), and so faster than fp32."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def mixed_precision(choice: str) -> str:
    """Accelerate's setting for a `precision` choice. On a CPU, auto is fp32; bf16 (autocast) is taken only
    where the CPU has bf16 units, since emulated bf16 is slower than fp32; fp16 is GPU-only."""
    if choice == "fp32":
        return "no"
    if not torch.cuda.is_available():
        if choice == "bf16":
            if not cpu_has_bf16():
                raise XuetuError("this CPU has no bf16 units (AVX512-BF16 or AMX): bf16 would be slower than fp32",
                                 "Leave precision at auto (fp32 on a CPU).")
            return "bf16"
        return "no"
    if choice == "auto":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return choice


def sharded(accelerator) -> bool:
    """FSDP and DeepSpeed hold a layer's weights whole only inside its own forward."""
    return accelerator.distributed_type.name in ("FSDP", "DEEPSPEED")


def micro_batches(n_seqs: int, batch_size: int, epoch: int, seed: int) -> list[list[int]]:
    """This epoch's micro-batches: a seeded shuffle, the same on every process and on resume."""
    order = torch.randperm(n_seqs, generator=torch.Generator().manual_seed(seed * 1000 + epoch)).tolist()
    return [order[i:i + batch_size] for i in range(0, n_seqs, batch_size)]


def oom_error(e: BaseException) -> XuetuError:
    return XuetuError(f"out of memory ({str(e).splitlines()[0][:120]})",
                      "Try a smaller --set batch_size (with more grad_accum), a smaller max_length, "
                      "--set gradient_checkpointing=true, or --method lora / qlora instead of full.")


def finetune(args: TrainArgs, resume: bool = True, progress: bool = True, loss=None, kind: str = "finetune",
             run_info: dict | None = None) -> Result:
    """Train `args.model` on `args.data`. `loss(model, packed, examples)` may build the loss module instead of
    CausalLMLoss (distillation does; it returns (summed loss, label count) like CausalLMLoss); `kind` and
    `run_info` go into run.json."""
    from accelerate import Accelerator
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    import xuetu.data

    hf_logging.set_verbosity_error()
    # -- setup --------------------------------------------------------------------------------------
    method = methods.get(args.method)
    if args.method == "qlora":
        method.check_available()
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
    info = run.info
    if info.get("status") in ("finished", "evaluating") and any(r.name == out for r in models.list_models()):
        raise XuetuError(f"{out} was already trained (run {run.path.name})",
                         f"Choose another --out, or remove it first: xuetu rm {out}")
    precision = mixed_precision(args.precision)
    from accelerate.state import AcceleratorState

    state = AcceleratorState._shared_state
    if state and state.get("_mixed_precision") not in (None, precision) and int(os.environ.get("WORLD_SIZE", "1")) == 1:
        AcceleratorState._reset_state()  # a second run in one process (tests, the server) with another precision
    accelerator = Accelerator(mixed_precision=precision, cpu=not torch.cuda.is_available())
    main = accelerator.is_main_process
    seed_everything(args.seed)

    tokenizer = AutoTokenizer.from_pretrained(base.hf_dir)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
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
    pack = args.pack and method.PACKING
    pack_length = args.max_length
    if pack:
        # Packing must not turn a small dataset into a couple of giant batches (one step per epoch): keep
        # about 8 micro-batches per epoch, never shorter than the longest example (nothing is cut).
        longest = max(len(e.input_ids) for e in train_ex)
        per_batch = sum(len(e.input_ids) for e in train_ex) // (args.batch_size * 8 * max(1, args.grad_accum))
        pack_length = max(longest, min(args.max_length, per_batch))
    seqs = pack_sequences(train_ex, pack_length) if pack else one_per_sequence(train_ex)
    val_seqs = pack_sequences(val_ex, pack_length) if pack else one_per_sequence(val_ex)

    # With bf16 on a CPU the frozen base is stored in bf16, so autocast does not cast it at every matrix multiply;
    # its weights take half the bytes, but a run's peak memory was not lower than in fp32 (benchmarks/RESULTS.md,
    # LoRA training). The trained weights stay fp32 (PEFT keeps adapters in fp32) and autocast computes in bf16.
    cpu_bf16 = accelerator.mixed_precision == "bf16" and not torch.cuda.is_available() and method.ADAPTER
    dtype = torch.bfloat16 if cpu_bf16 else torch.float32
    if main and args.precision == "auto" and not torch.cuda.is_available() and cpu_has_bf16():
        note("this CPU has bf16 units; --set precision=bf16 trained LoRA faster in our benchmarks "
             "(benchmarks/RESULTS.md)")
    model = method.load(base.hf_dir, dtype)
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        if hasattr(model, "enable_input_require_grads"):
            model.enable_input_require_grads()
    model = method.prepare(model, args, tokenizer)
    loss_module = loss(model, pack, train_ex + val_ex) if loss else CausalLMLoss(model, efficient=pack,
                                                                                  fused=not sharded(accelerator))
    optimizer = build_optimizer(model, args.lr, args.weight_decay)

    world, rank = accelerator.num_processes, accelerator.process_index
    per_rank = len(micro_batches(len(seqs), args.batch_size, 0, args.seed)) // world
    if per_rank == 0:
        raise XuetuError(f"too little data for {world} processes: {len(seqs)} sequences")
    steps_per_epoch = math.ceil(per_rank / args.grad_accum)
    total_steps = args.max_steps or max(1, math.ceil(steps_per_epoch * args.epochs))
    if not args.max_steps and total_steps < args.min_steps:
        if main:
            warn(f"{args.epochs:g} epochs of this data are only {total_steps} steps; training "
                 f"{args.min_steps} steps ({args.min_steps / steps_per_epoch:.0f} epochs) so a small dataset is learnt "
                 "(set min_steps=0 to turn this off)")
        total_steps = args.min_steps
    scheduler = build_scheduler(optimizer, total_steps, args.warmup, args.schedule)
    loss_module, optimizer = accelerator.prepare(loss_module, optimizer)
    trainable = [p for p in model.parameters() if p.requires_grad]
    fingerprint = hashlib.sha256(repr((len(seqs), sum(len(s.input_ids) for s in seqs), total_steps, args.method,
                                       args.batch_size, args.grad_accum, args.max_length, world)).encode()).hexdigest()[:16]

    # -- resume -------------------------------------------------------------------------------------
    state = {"epoch": 0, "micro": 0, "tokens": 0, "best_val": None, "bad_evals": 0}
    step = 0
    latest = checkpoint.latest(run.path) if resume else None
    if latest is not None:
        saved = checkpoint.load(latest, model, optimizer, scheduler)
        if saved.get("fingerprint") != fingerprint:
            raise XuetuError(f"the data or settings changed since the checkpoint in {run.path}",
                             "Use a new --out for a new run, or restore the original data and settings.")
        state.update({k: saved[k] for k in state})
        step = saved["step"]
        if main:
            run.truncate_metrics(step)
            note(f"resuming {out} from step {step} of {total_steps}")
    if main:
        n_train = sum(p.numel() for p in trainable)
        run.update(kind=kind, status="running", out=out, base=base.name, method=args.method,
                   config=to_dict(args), total_steps=total_steps, started_at=info.get("started_at") or now(),
                   trainable_parameters=n_train, examples=to_dict(report),
                   sequences=len(seqs), packed=pack, pid=os.getpid(), error=None, **(run_info or {}))

    # -- fit ----------------------------------------------------------------------------------------
    pad = tokenizer.pad_token_id
    device = accelerator.device
    # Packed rows keep their examples apart by restarting position ids; where the model's attention allows,
    # each example then attends only within itself (no (T, T) mask); else a block-diagonal 4D mask does it.
    attn = contextlib.ExitStack()
    packed_attention = pack and attention.supports(model)
    if packed_attention:
        attn.enter_context(attention.use_packed_attention(model))
    attn.enter_context(fused_lora(model))
    four_d = pack and not packed_attention

    def to_device(batch):
        return {k: v.to(device) for k, v in batch.items()}

    def validate() -> float | None:
        if not val_seqs:
            return None
        loss_module.eval()
        total = count = 0.0
        with torch.no_grad():
            for i in range(0, len(val_seqs), args.batch_size):
                s, n = loss_module(**to_device(collate(val_seqs[i:i + args.batch_size], pad, dtype, four_d)))
                total, count = total + float(s), count + float(n)
        loss_module.train()
        return total / max(count, 1)

    def save_checkpoint():
        if main:
            checkpoint.save(run.path, step, accelerator.unwrap_model(loss_module).model, optimizer, scheduler,
                            {**state, "fingerprint": fingerprint})
        accelerator.wait_for_everyone()

    eval_every = args.eval_every or steps_per_epoch
    bar = None
    if main and progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total_steps, initial=step, desc=f"training {out}", unit="step", dynamic_ncols=True)
    loss_module.train()
    last_loss = last_val = None
    stopped_early = False
    window_loss = window_tokens = 0.0
    tick = began = time.perf_counter()
    try:
        while step < total_steps:
            mbs = micro_batches(len(seqs), args.batch_size, state["epoch"], args.seed)[rank::world][:per_rank]
            while state["micro"] < len(mbs) and step < total_steps:
                window = mbs[state["micro"]:state["micro"] + args.grad_accum]
                for j, mb in enumerate(window):
                    batch = to_device(collate([seqs[i] for i in mb], pad, dtype, four_d))
                    sync = j == len(window) - 1
                    ctx = accelerator.no_sync(loss_module) if not sync else _nullcontext()
                    with ctx, accelerator.autocast():
                        total, n = loss_module(**batch)
                        loss = total / n.clamp(min=1)
                    if not torch.isfinite(loss):
                        raise FloatingPointError(f"the loss became {float(loss)} at step {step + 1}")
                    accelerator.backward(loss / len(window))
                    window_loss += float(loss.detach()) / len(window)
                    window_tokens += int((batch["input_ids"] != pad).sum()) if four_d else int(batch["attention_mask"].sum())
                grad_norm = accelerator.clip_grad_norm_(trainable, args.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                state["micro"] += len(window)
                state["tokens"] += int(window_tokens)
                elapsed = time.perf_counter() - tick
                last_loss = window_loss
                record = {"step": step, "epoch": state["epoch"], "loss": round(window_loss, 5), "seconds": round(elapsed, 4),
                          "lr": scheduler.get_last_lr()[0], "grad_norm": round(float(grad_norm), 4),
                          "tokens": state["tokens"], "tokens_per_s": round(window_tokens * world / max(elapsed, 1e-9), 1)}
                window_loss = window_tokens = 0.0
                tick = time.perf_counter()
                end_of_epoch = state["micro"] >= len(mbs)
                if step % eval_every == 0 or end_of_epoch or step == total_steps:
                    val = validate()
                    if val is not None:
                        last_val = val
                        record.update(val_loss=round(val, 5), val_ppl=round(math.exp(min(val, 50)), 3))
                        if state["best_val"] is None or val < state["best_val"] - 1e-4:
                            state["best_val"], state["bad_evals"] = val, 0
                        else:
                            state["bad_evals"] += 1
                if main:
                    run.log(record)
                    if bar is not None:
                        bar.set_postfix(loss=f"{record['loss']:.3f}", lr=f"{record['lr']:.1e}",
                                        tok_s=f"{record['tokens_per_s']:.0f}", refresh=False)
                        bar.update(1)
                if end_of_epoch:
                    state["epoch"] += 1
                    state["micro"] = 0
                if step % args.save_every == 0 or step == total_steps:
                    save_checkpoint()
                out_of_time = args.max_minutes is not None and time.perf_counter() - began > args.max_minutes * 60
                if (args.early_stopping and state["bad_evals"] >= args.early_stopping) or out_of_time:
                    if out_of_time and main:
                        warn(f"the time budget of {args.max_minutes:g} minutes is spent: stopping at step {step} "
                             f"of {total_steps}")
                    stopped_early = True
                    if step % args.save_every != 0 and step != total_steps:
                        save_checkpoint()
                    break
            if stopped_early:
                break
            if state["micro"] >= len(mbs):
                state["epoch"] += 1
                state["micro"] = 0
    except FloatingPointError as e:
        if main:
            run.update(status="failed", error=str(e))
        kept = checkpoint.latest(run.path)
        raise XuetuError(f"{e}: training stopped", f"The last good checkpoint is kept ({kept.name if kept else 'none yet'}). "
                         "Lower the learning rate (--set lr=…) and run the same command to resume.") from None
    except torch.OutOfMemoryError as e:
        raise oom_error(e) from None
    except RuntimeError as e:
        if "out of memory" in str(e).lower():
            raise oom_error(e) from None
        raise
    finally:
        attn.close()  # generation after training uses the model's own attention again
        if bar is not None:
            bar.close()

    # -- save ---------------------------------------------------------------------------------------
    accelerator.wait_for_everyone()
    trained = accelerator.unwrap_model(loss_module).model
    result = Result(out, run.path, step, last_loss, last_val, stopped_early)
    if main:
        final = run.path / "final"
        trained.save_pretrained(final)
        if method.ADAPTER:
            if tokenizer.chat_template and not _has_template(base.hf_dir):
                tokenizer.save_pretrained(final)  # the fallback template travels with the adapter
            models.create(out, final, base=base.name, progress=False)
        else:
            tokenizer.save_pretrained(final)
            models.create(out, final, progress=False, overrides={"params": base.params})
        evaluate = bool(args.evaluate and val_records)
        run.update(status="evaluating" if evaluate else "finished", finished_at=now(), steps=step, train_loss=last_loss,
                   val_loss=last_val, stopped_early=stopped_early)
        run.plot()
        if evaluate:
            from xuetu.train.report import compare_base_and_tuned

            compare_base_and_tuned(run, base, models.resolve(out), val_records, tokenizer, args, progress=progress)
            run.update(status="finished")
    accelerator.wait_for_everyone()
    return result


def _has_template(hf_dir: Path) -> bool:
    from xuetu.models.sources import has_chat_template

    return has_chat_template(hf_dir)


class _nullcontext:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def main(argv: list[str] | None = None) -> None:
    """`python -m xuetu.train.finetune --config recipe.yaml [--set key=value ...]` (for accelerate launch)."""
    import argparse

    from xuetu.train import args as targs

    ap = argparse.ArgumentParser(description="xuetu fine-tuning recipe")
    ap.add_argument("--config", default=None)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--no-resume", action="store_true")
    ns = ap.parse_args(argv)
    from xuetu.cli import console

    console.setup()  # this entry point is a command: the library's notes reach its terminal
    try:
        result = finetune(targs.load(TrainArgs, ns.config, ns.overrides), resume=not ns.no_resume)
    except XuetuError as e:
        print(f"Error: {e}", file=sys.stderr)
        sys.exit(1)
    print(f"trained {result.model} in {result.steps} steps (run {result.run})")


if __name__ == "__main__":
    main()
