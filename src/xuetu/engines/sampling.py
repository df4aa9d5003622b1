"""Next-token sampling for engines that run their own decode loop (transformers).

Order follows llama.cpp and HF: repetition penalty, temperature, top-k, top-p, then draw.
"""

from __future__ import annotations

import torch

from xuetu.engines.base import GenerateOptions


def apply_repeat_penalty(logits: torch.Tensor, recent: torch.Tensor, penalty: float) -> torch.Tensor:
    """CTRL-style: shrink the logits of tokens seen recently. logits (B, V), recent (B, R) token ids."""
    if penalty == 1.0 or recent.numel() == 0:
        return logits
    seen = logits.gather(1, recent)  # (B, R)
    seen = torch.where(seen > 0, seen / penalty, seen * penalty)
    return logits.scatter(1, recent, seen)


def sample_next(logits: torch.Tensor, opts: GenerateOptions, generator: torch.Generator | None) -> torch.Tensor:
    """Pick one token per row. logits (B, V) float32 -> (B,) token ids."""
    if opts.temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits / opts.temperature
    if opts.top_k and opts.top_k < logits.shape[-1]:
        kth = torch.topk(logits, opts.top_k, dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if opts.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        probs = sorted_logits.softmax(dim=-1)
        # drop a token when the tokens before it already cover top_p (always keep the first)
        drop = (probs.cumsum(dim=-1) - probs) > opts.top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(1, order, sorted_logits)
    probs = logits.softmax(dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)
