"""Prompt tuning: learn a few soft-prompt embeddings put before every input; the model stays frozen."""

from __future__ import annotations

from xuetu.train.methods import load_plain

ADAPTER = True
PACKING = False  # PEFT prepends virtual tokens per sequence: one example per sequence
PROMPT_LEARNING = True
LR = 3e-2
load = load_plain


def prepare(model, args, tokenizer):
    from peft import PromptTuningConfig, PromptTuningInit, get_peft_model

    if args.prompt.init_text:
        cfg = PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=args.prompt.num_virtual_tokens,
                                 prompt_tuning_init=PromptTuningInit.TEXT, prompt_tuning_init_text=args.prompt.init_text,
                                 tokenizer_name_or_path=tokenizer.name_or_path)
    else:
        cfg = PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=args.prompt.num_virtual_tokens)
    return get_peft_model(model, cfg)
