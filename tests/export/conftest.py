"""Models to export: tiny random Llama and Qwen2 models, and LoRA adapters whose B matrices are not zero."""

from __future__ import annotations

from pathlib import Path

import pytest


def build_tiny_qwen2(out: Path, seed: int = 0) -> Path:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from helpers.tiny import build_tokenizer

    tok = build_tokenizer()
    torch.manual_seed(seed)
    cfg = Qwen2Config(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256, tie_word_embeddings=True,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    Qwen2ForCausalLM(cfg).save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return out


def build_lora(base_dir: Path, out: Path, r: int = 8, seed: int = 0, scale: float = 0.02) -> Path:
    """A LoRA adapter over `base_dir` on every linear layer, with random (non-zero) B: it changes the outputs."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=r, lora_alpha=2 * r, lora_dropout=0.0, target_modules="all-linear"))
    torch.manual_seed(seed)
    for name, p in model.named_parameters():
        if "lora_B" in name:
            p.data.normal_(0, scale)
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def qwen_dir(tmp_path_factory) -> Path:
    return build_tiny_qwen2(tmp_path_factory.mktemp("qwen") / "tiny-qwen2")


@pytest.fixture(scope="session")
def smollm2_lora_dir(embedded_home, tmp_path_factory) -> Path:
    from helpers.env import home_env

    with home_env(embedded_home):
        from xuetu import models

        base = models.resolve("smollm2:135m").hf_dir
    return build_lora(base, tmp_path_factory.mktemp("lora") / "smollm2-lora")


@pytest.fixture
def smollm2_home(embedded_home, xuetu_home, monkeypatch):
    """A store of this test's own holding the embedded model (hard links: free), so exports can be added."""
    import shutil

    from xuetu.models.store import _link_or_copy

    shutil.copytree(embedded_home / "models", xuetu_home / "models", copy_function=_link_or_copy)
    from xuetu import models

    return models.resolve("smollm2:135m")
