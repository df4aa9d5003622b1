"""Whole weights and optimizer state of a model that FSDP or DeepSpeed shards across processes.

Under FSDP each process holds only its shard of every weight and of the optimizer's moments, so what one
process sees is a partial model. Saving therefore gathers: every process takes part (the calls here are
collectives, so call them on all ranks, never behind `if main`), and the main process receives the whole
state on the CPU (the others get {}). Resuming spreads it back: every process reads the checkpoint and keeps
its own shard. Without sharding (one process, DDP) nothing is gathered: each process already holds it all.

Weights are keyed as the trained model names them (`t.trained_model().named_parameters()`); under FSDP the
optimizer state is keyed by those names too (torch.distributed.checkpoint's format), not by position.
"""

from __future__ import annotations

import torch

from xuetu.errors import XuetuError

# Checkpoints record how their optimizer state is keyed, so one is never loaded into the other kind of run.
BY_POSITION, BY_NAME = "position", "name"
# What wrappers add to parameter names (FSDP1's units, activation checkpointing, torch.compile).
WRAPPER_INFIXES = ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module.", "_orig_mod.")


def kind(accelerator) -> str:
    """FSDP, DEEPSPEED, or NO (each process holds the whole model: one process, DDP)."""
    name = accelerator.distributed_type.name
    return name if name in ("FSDP", "DEEPSPEED") else "NO"


def optimizer_keys(accelerator) -> str:
    return BY_NAME if kind(accelerator) == "FSDP" else BY_POSITION


def _gather_options():
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    # cpu_offload with full_state_dict: rank 0 alone receives the whole tensors, in host memory.
    return StateDictOptions(full_state_dict=True, cpu_offload=True)


def _clean(name: str) -> str:
    for infix in WRAPPER_INFIXES:
        name = name.replace(infix, "")
    return name


def trainable_names(model) -> set[str]:
    return {_clean(n) for n, p in model.named_parameters() if p.requires_grad}


def gather_weights(accelerator, loss_module, model, trainable_only: bool) -> dict[str, torch.Tensor]:
    """The trained `model`'s weights (all, or the trainable ones), whole, on the CPU of the main process.
    `loss_module` is what the accelerator prepared; its `.model` is `model`. A collective under FSDP/DeepSpeed."""
    if kind(accelerator) == "NO":
        if not accelerator.is_main_process:
            return {}
        params = model.named_parameters() if trainable_only else model.state_dict().items()
        return {n: p.detach().cpu().contiguous() for n, p in params if not trainable_only or p.requires_grad}
    full = accelerator.get_state_dict(loss_module)  # FSDP1/2 and DeepSpeed ZeRO-3 gather here; {} off rank 0
    wanted = trainable_names(model) if trainable_only else None
    weights = {}
    for key, tensor in full.items():
        name = _clean(key)
        if not name.startswith("model."):
            continue  # the loss module's other parts (a distillation teacher) are not the trained model
        name = name[len("model."):]
        if wanted is None or name in wanted:
            weights[name] = tensor.detach().cpu().contiguous()
    return weights


def gather_optimizer(accelerator, loss_module, optimizer) -> dict:
    """The optimizer's state, whole, on the main process. A collective under FSDP."""
    if kind(accelerator) == "FSDP":
        from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

        return get_optimizer_state_dict(loss_module, _inner(optimizer), options=_gather_options())
    # DeepSpeed's ZeRO optimizer answers with this process's partition only: saved, but refused on resume.
    return optimizer.state_dict() if accelerator.is_main_process else {}


def restore(accelerator, loss_module, model, optimizer, weights: dict, optimizer_state: dict, keys: str) -> None:
    """Put a checkpoint's whole weights and optimizer state back: each process keeps its own shard under FSDP.
    A collective under FSDP; every process passes the whole state it read from the checkpoint."""
    mode = kind(accelerator)
    if mode == "DEEPSPEED":
        raise XuetuError("resuming under DeepSpeed is not supported: its optimizer state is sharded per process "
                         "and xuetu does not gather it yet",
                         "Run again with --no-resume, or train with recipes/accelerate/fsdp.yaml, which resumes.")
    if keys != optimizer_keys(accelerator):
        raise XuetuError(f"the checkpoint's optimizer state is keyed by {keys}, but this run keys it by "
                         f"{optimizer_keys(accelerator)}: it was written under another accelerate config",
                         "Resume with the accelerate config the run was started with, or pass --no-resume.")
    if mode == "NO":
        _copy_weights(model, weights)
        optimizer.load_state_dict(optimizer_state)
        return
    from torch.distributed.checkpoint.state_dict import (StateDictOptions, set_model_state_dict,
                                                         set_optimizer_state_dict)

    missing = [n for n in weights if n not in trainable_names(model)]
    if missing:
        raise RuntimeError(f"checkpoint has weights the model lacks: {missing[:3]}")
    # strict=False: a checkpoint holds the trainable weights only (a LoRA run's adapters, not its frozen base).
    options = StateDictOptions(full_state_dict=True, strict=False)
    set_model_state_dict(loss_module, {f"model.{n}": w for n, w in weights.items()}, options=options)
    set_optimizer_state_dict(loss_module, _inner(optimizer), optimizer_state, options=options)


def _copy_weights(model, weights: dict) -> None:
    params = dict(model.named_parameters())
    missing = [n for n in weights if n not in params]
    if missing:
        raise RuntimeError(f"checkpoint has weights the model lacks: {missing[:3]}")
    with torch.no_grad():
        for name, tensor in weights.items():
            params[name].copy_(tensor.to(params[name].device, params[name].dtype))


def _inner(optimizer):
    """The torch optimizer inside accelerate's wrapper, which torch.distributed.checkpoint needs."""
    return getattr(optimizer, "optimizer", optimizer)
