"""A preallocated KV cache of fixed shape for batched decoding on the transformers engine, and its attention.

Per layer, keys and values live in buffers of shape (slots, kv_heads, max_len, head_dim), allocated once. Each
running answer owns a slot, and rows sit at different lengths: a forward writes each row's new keys and values at
that row's own positions (its position ids) and attends over its slot under a validity mask. Shapes never
change from one decode step to the next, so on CUDA the step can be captured as a graph.

The work happens in an attention function registered with transformers' AttentionInterface under NAME: the
model still computes q/k/v and applies its own RoPE from the position ids, so any Llama/Qwen2-style model
(grouped-query attention included) decodes unchanged. A forward that does not pass `xuetu_kv` (the engine's
own single-stream `generate` on the same weights) falls through to plain SDPA.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from xuetu.engines.kv import plan_slots

NAME = "xuetu_static"
FAMILIES = ("llama", "qwen2", "qwen3", "mistral")
"""Model types whose attention goes through transformers' interface with one full-attention cache per layer."""


class StaticKV:
    """The buffers: keys[layer] and values[layer], each (slots, kv_heads, max_len, head_dim)."""

    def __init__(self, config, slots: int, max_len: int, dtype: torch.dtype, device: str):
        layers, kv_heads, head_dim = shape(config)
        self.slots, self.max_len = slots, max_len
        size = (slots, kv_heads, max_len, head_dim)
        self.keys = [zeros(size, dtype, device) for _ in range(layers)]
        self.values = [zeros(size, dtype, device) for _ in range(layers)]
        self.bytes = 2 * sum(k.numel() * k.element_size() for k in self.keys)

    def mark_static(self) -> None:
        """Tell torch.compile the buffers keep their addresses, so a CUDA graph may write them in place."""
        for t in self.keys + self.values:
            torch._dynamo.mark_static_address(t)


def zeros(size: tuple[int, ...], dtype: torch.dtype, device: str) -> torch.Tensor:
    """A zeroed buffer. On the CPU it comes from calloc (numpy's zeros): the pages cost memory only once written,
    so a cache sized for long answers weighs what the answers use (torch.zeros would touch every page). Zeros, not
    garbage, because a masked position still enters attention's matrix products, and NaN times 0 is NaN."""
    if str(device) != "cpu":
        return torch.zeros(size, dtype=dtype, device=device)
    import math

    import numpy as np

    nbytes = math.prod(size) * torch.empty(0, dtype=dtype).element_size()
    return torch.from_numpy(np.zeros(nbytes, dtype=np.uint8)).view(dtype).view(size)


def shape(config) -> tuple[int, int, int]:
    """(layers, kv heads, head dim) from a model config."""
    config = getattr(config, "text_config", None) or config
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return config.num_hidden_layers, kv_heads, head_dim


def bytes_per_token(config, dtype: torch.dtype) -> int:
    """Bytes one token's keys and values take over all layers."""
    layers, kv_heads, head_dim = shape(config)
    return 2 * layers * kv_heads * head_dim * torch.empty(0, dtype=dtype).element_size()


def supports(model) -> bool:
    """Models this cache decodes exactly: a known family whose attention runs through the interface (sdpa or
    eager), without sliding windows (a window would need a ring buffer, not a slot)."""
    config = model.config
    if getattr(config, "model_type", None) not in FAMILIES:
        return False
    if getattr(config, "_attn_implementation", None) not in ("sdpa", "eager", NAME):
        return False
    return not (getattr(config, "use_sliding_window", False) or
                (config.model_type == "mistral" and getattr(config, "sliding_window", None)))


MIN_SLOT_LEN = 1024


def plan(context_length: int, per_token: int, slots: int, budget: int | None) -> tuple[int, int]:
    """(slots, max_len): engines/kv.plan_slots with at least MIN_SLOT_LEN tokens a slot."""
    return plan_slots(context_length, per_token, slots, budget, MIN_SLOT_LEN)


CUDA_FRACTION = 0.8
"""Of the GPU memory free after the weights load, the share the cache may take (activations need the rest)."""


def device_budget(device: str) -> int | None:
    """Bytes the cache may take on this device by itself: a share of free CUDA memory; None on the CPU."""
    if not str(device).startswith("cuda"):
        return None
    free, _ = torch.cuda.mem_get_info(torch.device(device))
    return int(free * CUDA_FRACTION)


def static_attention(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None,
                     position_ids=None, xuetu_kv: StaticKV | None = None, xuetu_slots=None, **kwargs):
    """query (B, H, T, D), key/value (B, Hkv, T, D) -> ((B, T, H, D), None), as transformers expects.

    T > 1 is a prefill: each row is one whole prompt from position 0, right-padded, so plain causal attention over
    the fresh keys is exact (a real token never sees the padding after it). `xuetu_slots` (B,) names each row's
    slot. T == 1 is a decode step over the low slots (row b is slot b, `xuetu_slots` is 0..B-1), and
    `attention_mask` (B, 1, 1, W) says which of the slot's first W positions hold this row's tokens."""
    if xuetu_kv is None:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    keys, values = xuetu_kv.keys[module.layer_idx], xuetu_kv.values[module.layer_idx]
    B, H, T, D = query.shape
    # write each row's new keys/values at its own positions: indices (B, 1) and (B, T) -> values (B, T, Hkv, D)
    keys[xuetu_slots[:, None], :, position_ids] = key.transpose(1, 2)
    values[xuetu_slots[:, None], :, position_ids] = value.transpose(1, 2)
    if T > 1:
        out = F.scaled_dot_product_attention(query, key, value, is_causal=True, scale=scaling, enable_gqa=True)
        return out.transpose(1, 2), None  # (B, T, H, D)
    W = attention_mask.shape[-1]
    kv_heads = keys.shape[1]
    # grouped-query attention without copying the cache: the query heads that share a key/value head become
    # that head's rows of queries (head h = j * n_rep + r serves kv head j), and the mask broadcasts over them
    q = query.reshape(B, kv_heads, H // kv_heads, D)  # (B, Hkv, n_rep, D)
    out = F.scaled_dot_product_attention(q, keys[:B, :, :W], values[:B, :, :W], attn_mask=attention_mask,
                                         scale=scaling)  # (B, Hkv, n_rep, D)
    return out.reshape(B, 1, H, D), None


def register() -> None:
    """Make NAME known to transformers; outside the static path it masks and attends as sdpa does."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(NAME, static_attention)
    AttentionMaskInterface.register(NAME, sdpa_mask)


def use_static_attention(model) -> None:
    """Switch every config of the model to NAME (for as long as the model serves a static runner)."""
    register()
    for m in model.modules():
        config = getattr(m, "config", None)
        if config is not None and hasattr(config, "_attn_implementation"):
            config._attn_implementation = NAME
