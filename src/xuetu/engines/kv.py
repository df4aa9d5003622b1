"""One forward step with a KV cache, whatever transformers 5.x calls it.

transformers 5.24 renamed the cache argument and output field from `past_key_values` to `cache` (the old
name still works, with a warning, until 5.40). The engine and the batcher call the model through `step`,
so every version from our floor up decodes the same way.
"""

from __future__ import annotations

import functools

from xuetu.errors import Unavailable

DEFAULT_POOL = 65536
"""Tokens of KV cache for all of a runner's slots together, unless a memory budget allows less."""


@functools.cache
def cache_name() -> str:
    """`cache` from transformers 5.24 on, `past_key_values` before."""
    import transformers
    from packaging.version import Version

    return "cache" if Version(transformers.__version__).release >= (5, 24) else "past_key_values"


def step(model, cache=None, **inputs):
    """(output, cache after this step): `model(**inputs)` with `cache` passed in and read back out."""
    out = model(**inputs, use_cache=True, **({cache_name(): cache} if cache is not None else {}))
    return out, getattr(out, cache_name())


def plan_slots(context_length: int, per_token: int, slots: int, budget: int | None, min_slot: int,
               align: int = 1) -> tuple[int, int]:
    """(slots, tokens per slot) for a KV cache of `per_token` bytes a token within DEFAULT_POOL tokens and `budget`
    bytes, for the llama.cpp slot runner and the static batch runner alike. A slot gets the model's context length
    while the pool allows; past that, slots share the pool evenly, each at least `min_slot` tokens (fewer slots if
    need be), a shared length rounded down to a multiple of `align`."""
    pool = DEFAULT_POOL if budget is None else min(DEFAULT_POOL, max(budget, 0) // per_token)
    floor = min(context_length, min_slot)
    if pool < floor:
        raise Unavailable(f"the KV cache needs {floor * per_token / 1e6:.0f} MB at least for one answer of {floor} "
                          f"tokens, but only {max(budget or 0, 0) / 1e6:.0f} MB is left for it under --max-memory",
                          "Raise --max-memory, lower --max-batch, or unload other models.", code="insufficient_memory")
    slots = max(1, min(slots, pool // floor))
    per_slot = min(context_length, pool // slots)
    return slots, per_slot if per_slot == context_length else max(floor, per_slot // align * align)
