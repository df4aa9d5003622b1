"""AdamW with decoupled weight decay (not on biases and norms) and a warm-up then cosine/linear/constant schedule."""

from __future__ import annotations

import math

import torch


def build_optimizer(model, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "norm" in name.lower() or name.endswith(".bias") else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, betas=(0.9, 0.95), eps=1e-8)


def build_scheduler(optimizer, total_steps: int, warmup: float, kind: str) -> torch.optim.lr_scheduler.LambdaLR:
    warm = int(warmup) if warmup >= 1 else int(round(warmup * total_steps))

    def factor(step: int) -> float:
        if warm and step < warm:
            return (step + 1) / warm
        if kind == "constant":
            return 1.0
        progress = min((step - warm) / max(total_steps - warm, 1), 1.0)
        if kind == "linear":
            return max(1.0 - progress, 0.0)
        return 0.5 * (1.0 + math.cos(math.pi * progress))  # cosine to zero

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
