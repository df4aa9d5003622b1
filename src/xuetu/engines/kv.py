"""One forward step with a KV cache, whatever transformers 5.x calls it.

transformers 5.24 renamed the cache argument and output field from `past_key_values` to `cache` (the old
name still works, with a warning, until 5.40). The engine and the batcher call the model through `step`,
so every version from our floor up decodes the same way.
"""

from __future__ import annotations

import functools


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
