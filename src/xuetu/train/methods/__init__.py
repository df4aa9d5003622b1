"""Fine-tuning methods: one module per method, registered by name.

Each module provides:
- `load(model_dir, args, dtype) -> model`: the base model, loaded as the method needs it;
- `prepare(model, args, tokenizer) -> model`: what trains (PEFT wrapping, or all weights);
- `ADAPTER`: whether the result is an adapter over the base (else a whole new model);
- `PACKING`: whether packed sequences with block-diagonal masks work (prompt learning cannot).
"""

from __future__ import annotations

import importlib

from xuetu.errors import XuetuError

_METHODS = {
    "lora": "xuetu.train.methods.lora",
    "qlora": "xuetu.train.methods.qlora",
    "full": "xuetu.train.methods.full",
    "prompt-tuning": "xuetu.train.methods.prompt_tuning",
    "prefix-tuning": "xuetu.train.methods.prefix_tuning",
}


def register(name: str, module: str) -> None:
    _METHODS[name] = module


def get(name: str):
    if name not in _METHODS:
        raise XuetuError(f"unknown method {name!r}", f"Choose one of: {', '.join(_METHODS)}.")
    return importlib.import_module(_METHODS[name])


def names() -> list[str]:
    return list(_METHODS)


def load_plain(model_dir, dtype):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
