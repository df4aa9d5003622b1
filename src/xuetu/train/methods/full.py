"""Full fine-tuning: every weight trains; the result is a whole new model."""

from __future__ import annotations

from xuetu.train.methods import load_plain

ADAPTER = False
PACKING = True
PROMPT_LEARNING = False
LR = 2e-5
load = load_plain


def prepare(model, args, tokenizer):
    for p in model.parameters():
        p.requires_grad_(True)
    return model
