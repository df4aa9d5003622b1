"""Fine-tuning methods: one module per method, registered by name. This registry is the only list of
method names: the CLI's choices, TrainArgs' checks and the recipes read it.

Each module provides:
- `load(model_dir, args, dtype) -> model`: the base model, loaded as the method needs it;
- `prepare(model, args, tokenizer) -> model`: what trains (PEFT wrapping, or all weights);
- `ADAPTER`: whether the result is an adapter over the base (else a whole new model);
- `PACKING`: whether packed sequences with block-diagonal masks work (prompt learning cannot);
- `PROMPT_LEARNING`: whether it learns virtual tokens (then it has no plain forward: no logit distillation);
- `LR`: the default peak learning rate;
and may provide `check_available()`, which raises XuetuError where the method cannot run (QLoRA off a GPU).

Preference objectives (dpo, orpo, simpo, kto) and GRPO set `ALIGN = True` instead: they train the weights of
another method (lora, qlora or full, per `align.weights`) and are run by train/align.py, or train/grpo.py for
those with `REWARDED = True` (see methods/preference.py).

    methods.register("bias-only", "my_package.bias_only")  # a module, or its dotted name
"""

from __future__ import annotations

import importlib
from types import ModuleType

from xuetu.errors import XuetuError

_METHODS: dict[str, str | ModuleType] = {
    "lora": "xuetu.train.methods.lora",
    "qlora": "xuetu.train.methods.qlora",
    "full": "xuetu.train.methods.full",
    "prompt-tuning": "xuetu.train.methods.prompt_tuning",
    "prefix-tuning": "xuetu.train.methods.prefix_tuning",
    "dpo": "xuetu.train.methods.dpo",
    "orpo": "xuetu.train.methods.orpo",
    "simpo": "xuetu.train.methods.simpo",
    "kto": "xuetu.train.methods.kto",
    "grpo": "xuetu.train.methods.grpo",
}


def register(name: str, module: str | ModuleType) -> None:
    """Make `module` (or the module of that dotted name, imported when first used) the method `name`."""
    _METHODS[name] = module


def unregister(name: str) -> None:
    _METHODS.pop(name, None)


def get(name: str) -> ModuleType:
    if name not in _METHODS:
        raise XuetuError(f"unknown method {name!r}", f"Choose one of: {', '.join(_METHODS)}.")
    module = _METHODS[name]
    return importlib.import_module(module) if isinstance(module, str) else module


def names() -> list[str]:
    return list(_METHODS)


def load_plain(model_dir, args, dtype):
    from xuetu.models.weights import causal_lm

    return causal_lm(model_dir, dtype=dtype)
