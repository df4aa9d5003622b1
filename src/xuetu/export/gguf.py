"""Hugging Face safetensors -> GGUF, in Python with the `gguf` package: no compiler, no llama.cpp checkout.

    write_gguf(hf_dir, Path("model-q8_0.gguf"), "q8_0")

Covers Llama-style (llama, mistral, smollm) and Qwen2 models with byte-level BPE tokenizers: the
architecture's hyperparameters, rope settings, the tokenizer, its special tokens and the chat template
travel in the file's metadata, so llama.cpp (and Ollama) render prompts exactly as transformers does.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from xuetu.errors import XuetuError

QUANTS = ("f32", "f16", "bf16", "q8_0", "q4_1", "q4_0")
ARCHS = {"llama": "LLAMA", "mistral": "LLAMA", "qwen2": "QWEN2"}


def permute_rope(w: np.ndarray, n_head: int) -> np.ndarray:
    """transformers' rotary layout (two halves per head) -> llama.cpp's (interleaved pairs), for llama q and k."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def for_llama_cpp(cfg: dict, hf_name: str, data: np.ndarray) -> np.ndarray:
    """q and k rows (weights, biases, or a LoRA B) in llama.cpp's rope layout; Qwen2's is already the same."""
    if cfg["model_type"] == "qwen2":
        return data
    heads = cfg["num_attention_heads"]
    if ".q_proj." in hf_name:
        return permute_rope(data, heads)
    if ".k_proj." in hf_name:
        return permute_rope(data, cfg.get("num_key_value_heads") or heads)
    return data


def finish(writer, tmp: Path, out_file: Path) -> Path:
    """Write the file under a temporary name and move it into place: a half-written GGUF is never seen."""
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file(progress=False)
    finally:
        writer.close()
    tmp.replace(out_file)
    return out_file


def _qtype(quant: str, name: str, data: np.ndarray):
    """The GGML type for one tensor: norms and biases stay F32; blocks that do not fit fall back to F16."""
    import gguf

    T = gguf.GGMLQuantizationType
    if data.ndim == 1 or quant == "f32":
        return T.F32
    want = {"f16": T.F16, "bf16": T.BF16, "q8_0": T.Q8_0, "q4_1": T.Q4_1, "q4_0": T.Q4_0}[quant]
    if want in (T.Q4_0, T.Q4_1) and name == "token_embd.weight":
        want = T.Q8_0  # the embedding is looked up, not multiplied: 8 bits keep rare tokens intact, as llama.cpp does
    block = gguf.GGML_QUANT_SIZES[want][0]
    if data.shape[-1] % block:
        return T.F16
    return want


def file_type(quant: str) -> int:
    import gguf

    F = gguf.LlamaFileType
    return {"f32": F.ALL_F32, "f16": F.MOSTLY_F16, "bf16": F.MOSTLY_BF16, "q8_0": F.MOSTLY_Q8_0,
            "q4_1": F.MOSTLY_Q4_1, "q4_0": F.MOSTLY_Q4_0}[quant]


def read_config(hf_dir: Path) -> dict:
    try:
        cfg = json.loads((hf_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise XuetuError(f"cannot read {hf_dir / 'config.json'}: {e}", "Export needs a Hugging Face model folder.") from None
    if cfg.get("model_type") not in ARCHS:
        raise XuetuError(f"GGUF export does not cover the {cfg.get('model_type')!r} architecture yet",
                         f"Covered: {', '.join(sorted(ARCHS))}. Use --format hf for others.")
    return cfg


def rope(cfg: dict) -> tuple[float, dict]:
    params = cfg.get("rope_parameters") or cfg.get("rope_scaling") or {}
    theta = float(params.get("rope_theta") or cfg.get("rope_theta") or 10000.0)
    kind = params.get("rope_type") or params.get("type") or "default"
    return theta, {**params, "rope_type": kind}


def llama3_rope_factors(cfg: dict, params: dict) -> np.ndarray:
    """Per-frequency divisors of Llama 3.1's rope scaling, as the `rope_freqs` tensor llama.cpp reads."""
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    theta = rope(cfg)[0]
    freqs = 1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim))
    factor, low, high = params["factor"], params.get("low_freq_factor", 1.0), params.get("high_freq_factor", 4.0)
    old = params.get("original_max_position_embeddings", 8192)
    wavelen = 2 * np.pi / freqs
    smooth = (old / wavelen - low) / (high - low)
    out = np.where(wavelen < old / high, 1.0, np.where(wavelen > old / low, factor, 1 / ((1 - smooth) / factor + smooth)))
    return out.astype(np.float32)


def add_hparams(w, cfg: dict) -> None:
    import gguf

    heads, hidden = cfg["num_attention_heads"], cfg["hidden_size"]
    head_dim = cfg.get("head_dim") or hidden // heads
    w.add_context_length(cfg.get("max_position_embeddings") or 2048)
    w.add_embedding_length(hidden)
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(heads)
    w.add_head_count_kv(cfg.get("num_key_value_heads") or heads)
    w.add_layer_norm_rms_eps(cfg.get("rms_norm_eps", 1e-6))
    w.add_vocab_size(cfg["vocab_size"])
    w.add_rope_dimension_count(head_dim)
    if head_dim != hidden // heads:
        w.add_key_length(head_dim)
        w.add_value_length(head_dim)
    theta, params = rope(cfg)
    w.add_rope_freq_base(theta)
    kind = params["rope_type"]
    if kind == "linear":
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(params["factor"])
    elif kind == "yarn":
        w.add_rope_scaling_type(gguf.RopeScalingType.YARN)
        w.add_rope_scaling_factor(params["factor"])
        w.add_rope_scaling_orig_ctx_len(params.get("original_max_position_embeddings") or 4096)
    elif kind not in ("default", "llama3"):
        raise XuetuError(f"rope scaling {kind!r} is not covered by GGUF export", "Use --format hf.")


def tensor_names(cfg: dict):
    import gguf

    arch = getattr(gguf.MODEL_ARCH, ARCHS[cfg["model_type"]])
    names = gguf.get_tensor_name_map(arch, cfg["num_hidden_layers"])

    def name(hf_name: str) -> str:
        out = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if out is None:
            raise XuetuError(f"no GGUF name for the tensor {hf_name}", "This model has parts GGUF export does not cover.")
        return out

    return name


def load_state(hf_dir: Path):
    """name -> fp32 numpy array, over every safetensors shard."""
    from safetensors import safe_open

    files = sorted(hf_dir.glob("*.safetensors"))
    if not files:
        raise XuetuError(f"{hf_dir} has no .safetensors weights", "Export the model with --format hf first.")
    for f in files:
        with safe_open(f, framework="pt") as st:
            for key in st.keys():
                yield key, st.get_tensor(key).float().numpy()


def write_gguf(hf_dir: Path, out_file: Path, quant: str = "f16", progress: bool = False) -> Path:
    """Write `hf_dir` (a Hugging Face causal LM folder) as one GGUF file at `out_file`."""
    import gguf
    from tqdm.auto import tqdm

    from xuetu.export.gguf_vocab import add_tokenizer

    if quant not in QUANTS:
        raise XuetuError(f"unknown GGUF quantisation {quant!r}", f"Choose one of: {', '.join(QUANTS)}.")
    hf_dir, out_file = Path(hf_dir), Path(out_file)
    cfg = read_config(hf_dir)
    arch = gguf.MODEL_ARCH_NAMES[getattr(gguf.MODEL_ARCH, ARCHS[cfg["model_type"]])]
    tmp = out_file.with_name(out_file.name + ".partial")
    out_file.parent.mkdir(parents=True, exist_ok=True)
    w = gguf.GGUFWriter(tmp, arch)
    w.add_type(gguf.GGUFType.MODEL)
    w.add_name(cfg.get("_model_name_or_path") or hf_dir.name)
    w.add_file_type(file_type(quant))
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    add_hparams(w, cfg)
    add_tokenizer(w, hf_dir, cfg["vocab_size"])
    name = tensor_names(cfg)
    tied = cfg.get("tie_word_embeddings", False)
    _, params = rope(cfg)
    if params["rope_type"] == "llama3":
        w.add_tensor("rope_freqs.weight", llama3_rope_factors(cfg, params))
    state = list(load_state(hf_dir))
    for key, data in tqdm(state, desc=f"writing GGUF {quant}", unit="tensor", disable=not progress):
        if key.endswith("rotary_emb.inv_freq") or (tied and key == "lm_head.weight"):
            continue
        data = for_llama_cpp(cfg, key, data)
        gname = name(key)
        qtype = _qtype(quant, gname, data)
        w.add_tensor(gname, gguf.quants.quantize(data, qtype), raw_dtype=qtype)
    return finish(w, tmp, out_file)
