"""Attention for packed sequences without a mask: each example attends only to itself.

Packing puts several examples into one row, and their position ids restart at 0 at each example. A
(T, T) block-diagonal mask would keep them apart, but it costs T^2 memory per row and makes attention
compute every masked block too. Here the row is cut at every restart and each piece runs plain
causal attention (`is_causal=True`, the fast kernels): the cost is the sum of the pieces' squares,
not the square of the row. This is what flash-attention's varlen kernels do on GPUs, in plain torch.
That loop suits a CPU, where each piece is a plain matrix product. On a GPU a Python loop per example
and per layer (and reading the position ids back to the host to find the cuts) would leave the card
waiting, so there the whole row goes to one SDPA call with a block-diagonal causal mask, built on the
device from the position ids once per forward and shared by every layer: no host sync, no loop.

It registers with transformers' attention interface under NAME; `use_packed_attention(model)`
switches a model to it for training, and gives the previous setting back for generation.
"""

from __future__ import annotations

import weakref
from contextlib import contextmanager

import torch
import torch.nn.functional as F

NAME = "xuetu_packed"


def segments(position_ids: torch.Tensor) -> list[list[tuple[int, int]]]:
    """Per row, (start, end) of each example: a new one begins wherever the position id is 0."""
    out = []
    for row in position_ids.tolist():
        starts = [i for i, p in enumerate(row) if p == 0] or [0]
        if starts[0] != 0:
            starts.insert(0, 0)
        out.append(list(zip(starts, starts[1:] + [len(row)])))
    return out


def packed_attention(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None,
                     position_ids=None, **kwargs):
    """query (B, H, T, D), key/value (B, Hkv, T, D) -> ((B, T, H, D), None), as transformers expects."""
    if position_ids is None or query.shape[2] != key.shape[2]:  # generation with a cache: not packed
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    n_rep = query.shape[1] // key.shape[1]
    if n_rep > 1:  # grouped-query attention: each key/value head serves n_rep query heads
        key = key.repeat_interleave(n_rep, dim=1)
        value = value.repeat_interleave(n_rep, dim=1)
    if query.device.type != "cpu":
        return masked(query, key, value, position_ids, dropout, scaling)
    return pieces(query, key, value, position_ids, dropout, scaling)


def pieces(query, key, value, position_ids, dropout: float = 0.0, scaling=None):
    """The CPU path: plain causal attention over each example's piece of each row."""
    rows = []
    for b, pieces in enumerate(segments(position_ids)):
        parts = [F.scaled_dot_product_attention(query[b:b + 1, :, s:e], key[b:b + 1, :, s:e], value[b:b + 1, :, s:e],
                                                dropout_p=dropout, is_causal=True, scale=scaling)  # (1, H, e-s, D)
                 for s, e in pieces]
        rows.append(parts[0] if len(parts) == 1 else torch.cat(parts, dim=2))
    out = rows[0] if len(rows) == 1 else torch.cat(rows, dim=0)  # (B, H, T, D)
    return out.transpose(1, 2).contiguous(), None


def masked(query, key, value, position_ids, dropout: float = 0.0, scaling=None):
    """The GPU path: one SDPA call per layer over whole rows, the examples kept apart by a boolean mask."""
    out = F.scaled_dot_product_attention(query, key, value, attn_mask=block_causal(position_ids),
                                         dropout_p=dropout, scale=scaling)  # (B, H, T, D)
    return out.transpose(1, 2).contiguous(), None


_last_mask: tuple = (lambda: None, None)  # (a weak reference to the position ids, their mask)


def block_causal(position_ids: torch.Tensor) -> torch.Tensor:
    """(B, T) position ids restarting at 0 per example -> (B, 1, T, T) bool, True where attention is allowed.
    Every layer of one forward gets the same position-id tensor, so the mask is built once per forward."""
    global _last_mask
    ref, mask = _last_mask
    if ref() is position_ids:
        return mask
    example = (position_ids == 0).cumsum(-1)  # (B, T): which example of the row each token belongs to
    T = position_ids.shape[-1]
    causal = torch.ones(T, T, dtype=torch.bool, device=position_ids.device).tril()
    mask = ((example[:, :, None] == example[:, None, :]) & causal)[:, None]
    _last_mask = (weakref.ref(position_ids), mask)
    return mask


def register() -> None:
    from transformers import AttentionInterface

    AttentionInterface.register(NAME, packed_attention)


def supports(model) -> bool:
    """Models whose attention goes through transformers' interface (Llama, Qwen2, Mistral, …)."""
    config = getattr(model, "config", None)
    return getattr(config, "_attn_implementation", None) in ("sdpa", "eager", NAME)


@contextmanager
def use_packed_attention(model):
    register()
    configs = {id(m.config): m.config for m in model.modules() if hasattr(m, "config")}.values()
    before = [(c, c._attn_implementation) for c in configs if hasattr(c, "_attn_implementation")]
    for c, _ in before:
        c._attn_implementation = NAME
    try:
        yield
    finally:
        for c, impl in before:
            c._attn_implementation = impl
