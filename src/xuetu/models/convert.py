"""GGUF -> Hugging Face safetensors, so a GGUF model can also be trained and run by transformers.

transformers reads a GGUF (`gguf_file=`) and dequantises it, but refuses to save a model loaded
that way; so we rebuild a clean model from the config and load the state dict into it.
"""

from __future__ import annotations

from pathlib import Path

from xuetu.errors import XuetuError


def gguf_to_hf(gguf: Path, out: Path) -> None:
    """Write config, safetensors weights (fp32) and tokenizer for `gguf` into `out`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from xuetu.models.weights import causal_lm
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        loaded = causal_lm(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    except Exception as e:  # transformers covers many but not all GGUF architectures
        raise XuetuError(f"transformers cannot read {gguf.name}: {e}",
                         "The model still runs on the llama.cpp engine; training needs a Hugging Face folder.") from None
    finally:
        hf_logging.enable_progress_bar()
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.name_or_path = ""
    with torch.device("meta"):
        clean = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    clean.load_state_dict(loaded.state_dict(), assign=True, strict=True)
    clean.tie_weights()
    clean.generation_config = loaded.generation_config
    out.mkdir(parents=True, exist_ok=True)
    clean.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
