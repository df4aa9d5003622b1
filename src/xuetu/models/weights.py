"""Loading a Hugging Face causal LM with no hidden network: hub kernels stay off unless the user opts in.

transformers 5 turns on "hub kernels" by default when the `kernels` package is installed (it is a dependency
of transformers itself): on a GPU, `model.train()` and loading then fetch compiled third-party kernels
(`kernels-community/rotary`, …) from the Hugging Face Hub. Offline that raised at every training step, and
online it silently downloads and runs code. xuetu loads every model with `use_kernels` off, and sets
transformers' own switch `USE_HUB_KERNELS=NO` for its process, unless `XUETU_HUB_KERNELS=1` says otherwise.
"""

from __future__ import annotations

import os

ENV = "XUETU_HUB_KERNELS"
TRUE = {"1", "yes", "true", "on"}


def hub_kernels_allowed() -> bool:
    """The user's opt-in: XUETU_HUB_KERNELS=1 (documented in docs/security.md)."""
    return os.environ.get(ENV, "").strip().lower() in TRUE


def keep_hub_kernels_off() -> None:
    """transformers' own switch, read at call time by every kernel lookup. Only XUETU_HUB_KERNELS opts in, so a
    USE_HUB_KERNELS=YES left in a shell from other work does not turn downloads on behind xuetu's back."""
    if not hub_kernels_allowed():
        os.environ["USE_HUB_KERNELS"] = "NO"


def causal_lm(source, **kwargs):
    """AutoModelForCausalLM.from_pretrained(source, **kwargs), with hub kernels only where the user opted in."""
    from transformers import AutoModelForCausalLM

    keep_hub_kernels_off()
    return AutoModelForCausalLM.from_pretrained(source, use_kernels=hub_kernels_allowed(), **kwargs)
