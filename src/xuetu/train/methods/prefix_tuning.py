"""Prefix tuning: learn key/value prefixes for every attention layer; the model stays frozen."""

from __future__ import annotations

from xuetu.train.methods import load_plain

ADAPTER = True
PACKING = False  # PEFT feeds the prefix as a KV cache per sequence: one example per sequence
PROMPT_LEARNING = True
LR = 1e-2
load = load_plain


def prepare(model, args, tokenizer):
    from peft import PrefixTuningConfig, get_peft_model

    return get_peft_model(model, PrefixTuningConfig(task_type="CAUSAL_LM",
                                                    num_virtual_tokens=args.prompt.num_virtual_tokens))
