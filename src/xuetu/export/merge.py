"""A LoRA model merged into its base, written as a plain Hugging Face folder (safetensors + tokenizer + template).

W' = W + (alpha / r) * B A for every adapted layer (PEFT's merge_and_unload). The result needs no PEFT
to load, is what GGUF export reads, and is what any other tool (vLLM, llama.cpp's converter) expects.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from xuetu.errors import XuetuError
from xuetu.models.ref import ModelRef


def tokenizer_source(ref: ModelRef, base: ModelRef) -> Path:
    """Where the model's tokenizer lives: an adapter trained with a fallback template carries its own."""
    if ref.adapter_dir is not None and (ref.adapter_dir / "tokenizer_config.json").is_file():
        return ref.adapter_dir
    return base.hf_dir


def write_hf(ref: ModelRef, out: Path, dtype: str = "float32") -> Path:
    """`ref` as a self-contained Hugging Face folder at `out`: merged if it is a LoRA adapter."""
    from xuetu.engines.transformers_engine import TransformersEngine
    from xuetu.models import resolve

    base = resolve(ref.base) if ref.base else ref
    if base.hf_dir is None:
        raise XuetuError(f"{base.name} has no Hugging Face weights to export",
                         f"Pull it again (`xuetu pull {base.name}`) or create it from a Hugging Face folder.")
    if ref.adapter_dir is not None and ref.adapter_type != "LORA":
        raise XuetuError(f"{ref.name} is a {ref.adapter_type} adapter, which cannot be merged into the weights",
                         "Only LoRA merges into the base. Prompt and prefix tuning run with `xuetu run` / `serve`.")
    out = Path(out)
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    engine = TransformersEngine(ref, device="cpu", dtype=dtype)  # loads base + adapter and the right tokenizer
    model, tokenizer = engine.model, engine.tokenizer
    if ref.adapter_dir is not None:
        model = model.merge_and_unload()
    model.config.name_or_path = ref.name
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out
