"""The phases every training recipe shares, called (not inherited) by finetune.py and pretrain.py.

A recipe sets up its model and data, builds a `Training` (what the loop works on), then calls:
`resume` (from the last checkpoint), `micro_step` and `optimizer_step` inside its own loop,
`validation_loss` and `save_checkpoint` where it wants them, with `stopping_on_failure` around it all.
The loop itself, which differs per recipe (packing and early stopping; token blocks), stays in the recipe.
"""

from __future__ import annotations

import contextlib
import os
import random
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
import torch

from xuetu import models
from xuetu.errors import Conflict, XuetuError
from xuetu.notify import note
from xuetu.train import checkpoint, full_state
from xuetu.train.runs import Run


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


def make_accelerator(precision_choice: str):
    """An Accelerator for this run's precision (on the CPU when there is no GPU)."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    precision = mixed_precision(precision_choice)
    shared = AcceleratorState._shared_state
    if shared and shared.get("_mixed_precision") not in (None, precision) and int(os.environ.get("WORLD_SIZE", "1")) == 1:
        AcceleratorState._reset_state()  # a second run in one process (tests, the server) with another precision
    accelerator = Accelerator(mixed_precision=precision, cpu=not torch.cuda.is_available())
    if os.environ.get("ACCELERATE_USE_FSDP", "").lower() == "true" and accelerator.distributed_type.name == "MULTI_CPU":
        fsdp_on_cpu(accelerator)
    return accelerator


def fsdp_on_cpu(accelerator) -> None:
    """Turn on FSDP for processes without a GPU, which `accelerate launch` asked for (recipes/accelerate/cpu-fsdp.yaml).
    accelerate 1.16 builds the FSDP plugin from the launcher's settings but, on a CPU, keeps plain multi-CPU data
    parallel; torch's FSDP2 (fully_shard) runs on the CPU over gloo, so this is how the sharded path is tested
    without GPUs. FSDP1 refuses a machine without an accelerator."""
    from accelerate.state import PartialState
    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

    plugin = FullyShardedDataParallelPlugin()  # from the FSDP_* settings accelerate launch exported
    if plugin.fsdp_version != 2:
        raise XuetuError("FSDP on a CPU needs FSDP2: torch's FSDP1 runs only on GPUs",
                         "Set fsdp_version: 2 in the accelerate config (as recipes/accelerate/cpu-fsdp.yaml does).")
    accelerator.state.fsdp_plugin = plugin
    accelerator.state.distributed_type = DistributedType.FSDP
    PartialState._shared_state["distributed_type"] = DistributedType.FSDP


@contextlib.contextmanager
def whole_root(t: "Training"):
    """The sharded root's own weights (embeddings, final norm, head) gathered, for a forward of the trained model
    that bypasses the loss module, whose hooks would gather them (under FSDP2 the layers still gather their own).
    Every process must enter it together. Without sharding it does nothing."""
    module = t.loss_module
    if not sharded(t.accelerator):
        yield
    elif hasattr(module, "unshard") and hasattr(module, "reshard"):  # FSDP2 (fully_shard)
        module.unshard()
        try:
            yield
        finally:
            module.reshard()
    elif t.accelerator.distributed_type.name == "FSDP":  # FSDP1: gather everything for the while
        from torch.distributed.fsdp import FullyShardedDataParallel

        with FullyShardedDataParallel.summon_full_params(module, writeback=False):
            yield
    else:  # DeepSpeed ZeRO-2 (the recipe) shards optimizer state and gradients, not the weights
        yield


def sharded(accelerator) -> bool:
    """FSDP and DeepSpeed hold a layer's weights whole only inside its own forward."""
    return accelerator.distributed_type.name in ("FSDP", "DEEPSPEED")


def oom_error(e: BaseException) -> XuetuError:
    return XuetuError(f"out of memory ({str(e).splitlines()[0][:120]})",
                      "Try a smaller --set batch_size (with more grad_accum), a smaller max_length, "
                      "--set gradient_checkpointing=true, or --method lora / qlora instead of full.")


def refuse_if_trained(run: Run, out: str) -> None:
    """A finished run whose model is in the store is not trained over."""
    if run.info.get("status") in ("finished", "evaluating") and any(r.name == out for r in models.list_models()):
        raise Conflict(f"{out} was already trained (run {run.path.name})",
                       f"Choose another --out, or remove it first: xuetu rm {out}")


@dataclass
class Training:
    """What a recipe's loop works on. `counters` (epoch, position in it, tokens, ...) is saved with every
    checkpoint and restored by `resume`, so a resumed run continues where the last one stopped."""

    accelerator: Any
    loss_module: Any  # prepared by the accelerator; forward(**batch) -> (summed loss, label count)
    optimizer: Any
    scheduler: Any
    run: Run
    total_steps: int
    fingerprint: str  # of the data and settings: a checkpoint only resumes the run that wrote it
    counters: dict = field(default_factory=dict)
    step: int = 0

    @property
    def main(self) -> bool:
        return self.accelerator.is_main_process

    def trained_model(self):
        return self.accelerator.unwrap_model(self.loss_module).model


def resume(t: Training, model, out: str, changed: str, hint: str) -> None:
    """Continue from the run's last checkpoint: weights, optimizer, schedule, counters and step. `changed`
    names what a different fingerprint means ("the data or settings"); `hint` says what to do then.
    Every process reads the checkpoint; under FSDP each keeps its own shard of it."""
    latest = checkpoint.latest(t.run.path)
    if latest is None:
        return
    saved = checkpoint.read(latest)
    if saved.state.get("fingerprint") != t.fingerprint:
        raise XuetuError(f"{changed} changed since the checkpoint in {t.run.path}", hint)
    full_state.restore(t.accelerator, t.loss_module, model, t.optimizer, saved.weights, saved.optimizer,
                       saved.optimizer_keys)
    t.scheduler.load_state_dict(saved.scheduler)
    t.counters.update({k: saved.state[k] for k in t.counters})
    t.step = saved.state["step"]
    if t.main:
        t.run.truncate_metrics(t.step)
        note(f"resuming {out} from step {t.step} of {t.total_steps}")


def micro_step(t: Training, batch: dict, n_micro: int, sync: bool = True) -> float:
    """Forward and backward of one micro-batch of an accumulation window of `n_micro`; its mean loss.
    Gradients are synchronised across processes only on the window's last micro-batch (`sync`)."""
    acc = t.accelerator
    ctx = contextlib.nullcontext() if sync else acc.no_sync(t.loss_module)
    with ctx, acc.autocast():
        total, n = t.loss_module(**batch)
        loss = total / n.clamp(min=1)
    if not torch.isfinite(loss):
        raise FloatingPointError(f"the loss became {float(loss)} at step {t.step + 1}")
    acc.backward(loss / n_micro)
    return float(loss.detach())


def optimizer_step(t: Training, parameters, max_grad_norm: float) -> float:
    """Clip, step the optimizer and the schedule, clear the gradients; the gradient norm before clipping."""
    grad_norm = t.accelerator.clip_grad_norm_(parameters, max_grad_norm)
    t.optimizer.step()
    t.scheduler.step()
    t.optimizer.zero_grad(set_to_none=True)
    t.step += 1
    return float(grad_norm) if grad_norm is not None else float("nan")


def validation_loss(t: Training, batches: Iterable[dict]) -> float:
    """Mean loss per label token over `batches`, without gradients."""
    t.loss_module.eval()
    total = count = 0.0
    with torch.no_grad():
        for batch in batches:
            s, n = t.loss_module(**batch)
            total, count = total + float(s), count + float(n)
    t.loss_module.train()
    return total / max(count, 1)


def save_checkpoint(t: Training) -> None:
    """Every process takes part (under FSDP the whole state is gathered from all of them); the main one writes."""
    acc = t.accelerator
    weights = full_state.gather_weights(acc, t.loss_module, t.trained_model(), trainable_only=True)
    optimizer = full_state.gather_optimizer(acc, t.loss_module, t.optimizer)
    if t.main:
        checkpoint.save(t.run.path, t.step, weights, optimizer, full_state.optimizer_keys(acc), t.scheduler,
                        {**t.counters, "fingerprint": t.fingerprint})
    acc.wait_for_everyone()


def final_weights(t: Training) -> dict | None:
    """The trained model's whole state dict to save it from, on the main process: gathered from every process
    under FSDP and DeepSpeed (so call this on all of them); None where the model holds all its weights itself."""
    if full_state.kind(t.accelerator) == "NO":
        return None
    return full_state.gather_weights(t.accelerator, t.loss_module, t.trained_model(), trainable_only=False)


def progress_bar(t: Training, enabled: bool, desc: str):
    """A step bar on the main process when `enabled` (else None), starting at a resumed run's step."""
    if not (enabled and t.main):
        return None
    from tqdm.auto import tqdm

    return tqdm(total=t.total_steps, initial=t.step, desc=desc, unit="step", dynamic_ncols=True)


@contextlib.contextmanager
def stopping_on_failure(t: Training):
    """A loss that is no longer finite marks the run failed; running out of memory says what to change."""
    try:
        yield
    except FloatingPointError as e:
        if t.main:
            t.run.update(status="failed", error=str(e))
        kept = checkpoint.latest(t.run.path)
        raise XuetuError(f"{e}: training stopped", f"The last good checkpoint is kept ({kept.name if kept else 'none yet'}). "
                         "Lower the learning rate (--set lr=…) and run the same command to resume.") from None
    except torch.OutOfMemoryError as e:
        raise oom_error(e) from None
    except RuntimeError as e:
        if "out of memory" in str(e).lower():
            raise oom_error(e) from None
        raise
