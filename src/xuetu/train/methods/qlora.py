"""QLoRA: LoRA over 4-bit NF4 weights. Needs an NVIDIA GPU and bitsandbytes; refuses clearly elsewhere."""

from __future__ import annotations

import importlib.util

from xuetu.errors import XuetuError
from xuetu.train.methods.lora import lora_config

ADAPTER = True
PACKING = True
PROMPT_LEARNING = False
LR = 5e-4


def check_available() -> None:
    import torch

    if not torch.cuda.is_available():
        raise XuetuError("QLoRA needs an NVIDIA GPU (4-bit weights are a CUDA feature)",
                         "On a CPU use --method lora: the same adapters, in full precision.")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise XuetuError("QLoRA needs the bitsandbytes package", "pip install bitsandbytes")


def load(model_dir, args, dtype):
    import torch
    from transformers import BitsAndBytesConfig

    from xuetu.models.weights import causal_lm

    check_available()
    quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                               bnb_4bit_compute_dtype=torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)
    return causal_lm(model_dir, quantization_config=quant, device_map={"": 0})


def prepare(model, args, tokenizer):
    from peft import get_peft_model, prepare_model_for_kbit_training

    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=args.gradient_checkpointing)
    return get_peft_model(model, lora_config(args))
