"""Where a model runs: the one decision of which weights to load, on which engine, behind which runner.

A LoRA adapter does not load weights of its own on the transformers engine: it rides its base model's
continuous-batching runner as a named adapter, so several fine-tunes of one base share its weights. Three
cases cannot share: a prompt- or prefix-tuned adapter (its virtual tokens do not mix with LoRA rows in one
batch), an adapter on INT8 weights (INT8 rows take no LoRA at run time, so it is merged into a model of its
own), and a GGUF LoRA (only llama.cpp applies it).
"""

from __future__ import annotations

from dataclasses import dataclass

from xuetu import engines, models
from xuetu.errors import BadInput
from xuetu.models.ref import ModelRef

RUNNERS = ("batch", "slots", "serial", "concurrent", "embedder")


@dataclass(frozen=True)
class Placement:
    holder: ModelRef
    """The model whose weights are loaded: the requested one, or the base an adapter rides on."""
    engine: str
    """The engine that loads them: transformers, llama.cpp, vllm or sentence-transformers."""
    runner: str
    """batch (continuous batching, shares a base with adapters), slots (llama.cpp's continuous batching with
    prefix caching), serial (one request at a time),
    concurrent (the engine batches itself) or embedder (no generation)."""
    adapter: str | None = None
    """The adapter to apply on the holder per request, when it rides on its base."""

    @property
    def key(self) -> tuple[str, str]:
        """What identifies one loaded copy: requests with the same key share it."""
        return self.holder.name, self.engine if self.runner != "serial" or self.engine != "transformers" \
            else "transformers-serial"


def place(ref: ModelRef, engine: str = "auto", quant: str | None = None) -> Placement:
    """Where `ref` runs, given the engine asked for (auto picks as `xuetu run` does) and a precision."""
    if ref.kind == "embedding":
        return Placement(ref, "sentence-transformers", "embedder")
    if ref.adapter_dir is not None:
        return _place_adapter(ref, quant)
    chosen = engines.choose(ref, engine, quant)
    if chosen == "llama.cpp" and ref.gguf_file is None and ref.gguf_adapter is None:
        chosen = "transformers"  # an HF-only model under --engine llama.cpp
    runner = {"transformers": "batch", "llama.cpp": "slots", "vllm": "concurrent", "remote": "concurrent"}.get(
        chosen, "serial")
    return Placement(ref, chosen, runner)


def _place_adapter(ref: ModelRef, quant: str | None) -> Placement:
    """An adapter in safetensors runs on transformers whatever engine was asked for: neither llama.cpp nor vLLM
    applies one (a GGUF LoRA is placed by `engines.choose`, above)."""
    if ref.prompt_learning:  # virtual tokens cannot share a LoRA batch: its own serial runner
        if quant == "int8":
            raise BadInput(f"{ref.name} is a prompt- or prefix-tuned adapter, which cannot run on INT8 weights "
                           "(--quant int8)", "Serve it without --quant, or with --quant bf16/fp16.", param="model")
        return Placement(ref, "transformers", "serial")
    if quant == "int8":  # INT8 rows take no LoRA at run time: the adapter is merged, its own model
        return Placement(ref, "transformers", "batch")
    return Placement(models.resolve(ref.base), "transformers", "batch", adapter=ref.name)
