"""LoRA: train small low-rank matrices beside frozen weights (PEFT)."""

from __future__ import annotations

from xuetu.train.methods import load_plain

ADAPTER = True
PACKING = True
PROMPT_LEARNING = False
LR = 5e-4
load = load_plain


def lora_config(args):
    from peft import LoraConfig

    return LoraConfig(r=args.lora.r, lora_alpha=args.lora.alpha, lora_dropout=args.lora.dropout,
                      target_modules=args.lora.target_modules, task_type="CAUSAL_LM")


def prepare(model, args, tokenizer):
    from peft import get_peft_model

    return get_peft_model(model, lora_config(args))
