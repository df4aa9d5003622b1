"""A PEFT LoRA adapter as a GGUF adapter file, which llama.cpp (and Ollama's ADAPTER) applies over the base GGUF.

Each adapted linear layer `W` becomes two tensors, `<gguf name>.lora_a` (r x in) and `.lora_b` (out x r);
llama.cpp adds (alpha / r) * B A x at run time. q and k of Llama-style models get the same row permutation
as their base weights (llama.cpp rotates interleaved pairs), applied to B's rows.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from xuetu.errors import XuetuError
from xuetu.export.gguf import finish, for_llama_cpp, read_config, tensor_names


def _adapter(adapter_dir: Path) -> tuple[dict, dict[str, np.ndarray]]:
    from safetensors import safe_open

    cfg = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    if cfg.get("peft_type") != "LORA":
        raise XuetuError(f"the adapter is {cfg.get('peft_type')}, not LoRA", "Only LoRA adapters have a GGUF form.")
    if cfg.get("use_dora"):
        raise XuetuError("DoRA adapters have no GGUF form in llama.cpp", "Export with --format gguf (merged) instead.")
    if cfg.get("modules_to_save"):
        raise XuetuError(f"the adapter also trains whole modules ({', '.join(cfg['modules_to_save'])})",
                         "llama.cpp adapters hold LoRA pairs only; export with --format gguf (merged) instead.")
    files = [adapter_dir / "adapter_model.safetensors"]
    if not files[0].is_file():
        raise XuetuError(f"{adapter_dir} has no adapter_model.safetensors", "Save the adapter with safetensors.")
    tensors = {}
    with safe_open(files[0], framework="pt") as st:
        for key in st.keys():
            tensors[key] = st.get_tensor(key).float().numpy()
    return cfg, tensors


def write_gguf_lora(adapter_dir: Path, base_hf_dir: Path, out_file: Path, dtype: str = "f16") -> Path:
    """Write the LoRA adapter in `adapter_dir` (trained over the model in `base_hf_dir`) to `out_file`."""
    import gguf

    cfg = read_config(Path(base_hf_dir))
    lora, tensors = _adapter(Path(adapter_dir))
    r = int(lora["r"])
    alpha = float(lora.get("lora_alpha", r))
    if lora.get("use_rslora"):
        alpha = alpha * math.sqrt(r)  # rsLoRA scales by alpha/sqrt(r); llama.cpp by alpha/r
    if lora.get("rank_pattern") or lora.get("alpha_pattern"):
        raise XuetuError("the adapter uses per-layer ranks or alphas", "Export with --format gguf (merged) instead.")
    name = tensor_names(cfg)
    arch = gguf.MODEL_ARCH_NAMES[getattr(gguf.MODEL_ARCH, {"qwen2": "QWEN2"}.get(cfg["model_type"], "LLAMA"))]
    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_file.with_name(out_file.name + ".partial")
    w = gguf.GGUFWriter(tmp, arch)
    w.add_type(gguf.GGUFType.ADAPTER)
    w.add_string(gguf.Keys.Adapter.TYPE, "lora")
    w.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
    qtype = {"f16": gguf.GGMLQuantizationType.F16, "f32": gguf.GGMLQuantizationType.F32}[dtype]
    pairs = 0
    for key in sorted(tensors):
        if ".lora_A." not in key:
            if ".lora_B." not in key:
                raise XuetuError(f"the adapter holds {key}, which is not a LoRA matrix",
                                 "Export with --format gguf (merged) instead.")
            continue
        a, b = tensors[key], tensors[key.replace(".lora_A.", ".lora_B.")]
        module = key.split(".lora_A.")[0]  # base_model.model.model.layers.0.self_attn.q_proj
        hf_name = module.removeprefix("base_model.model.") + ".weight"
        b = for_llama_cpp(cfg, hf_name, b)  # B's rows are the layer's output rows
        base_name = name(hf_name)
        w.add_tensor(base_name + ".lora_a", gguf.quants.quantize(np.ascontiguousarray(a), qtype), raw_dtype=qtype)
        w.add_tensor(base_name + ".lora_b", gguf.quants.quantize(np.ascontiguousarray(b), qtype), raw_dtype=qtype)
        pairs += 1
    if not pairs:
        raise XuetuError(f"{adapter_dir} holds no LoRA matrices", "Check the adapter; it may be empty.")
    return finish(w, tmp, out_file)
