"""Models to export: tiny random Llama and Qwen2 models, and LoRA adapters whose B matrices are not zero."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.tiny import build_lora, build_tiny_qwen2


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
