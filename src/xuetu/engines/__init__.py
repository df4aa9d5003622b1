"""Inference engines behind one small registry.

Each engine is one module with a class implementing `xuetu.engines.base.Engine` and a
module-level `is_available()` that answers without importing heavy libraries. Register a
new one with one line: `register("name", "package.module:Class")`.
"""

from __future__ import annotations

import importlib

from xuetu.engines.base import Chunk, Engine, GenerateOptions
from xuetu.errors import XuetuError
from xuetu.models.ref import ModelRef

__all__ = ["Chunk", "Engine", "GenerateOptions", "QUANTS", "register", "names", "choose", "load"]

_ENGINES: dict[str, str] = {}
# Precisions the transformers engine can load a model in (`quant=`); a GGUF carries its own.
QUANTS = {"int8": "weight-only INT8, about 4x smaller than FP32 (CPU or GPU)",
          "fp16": "16-bit floats, 2x smaller (GPU; slow on most CPUs)",
          "bf16": "bfloat16, 2x smaller (GPU, or a CPU with bf16 support)"}
GGUF_QUANT_HINT = "A GGUF is quantised already: export one with `xuetu export {name} --format gguf --quant q8_0`."


def register(name: str, target: str) -> None:
    """Make an engine available as `name`; target is "module:Class"."""
    _ENGINES[name] = target


register("transformers", "xuetu.engines.transformers_engine:TransformersEngine")
register("llama.cpp", "xuetu.engines.llamacpp:LlamaCppEngine")
register("vllm", "xuetu.engines.vllm_engine:VllmEngine")
register("remote", "xuetu.engines.remote:RemoteEngine")


def names() -> list[str]:
    return list(_ENGINES)


def _module(name: str):
    return importlib.import_module(_ENGINES[name].split(":")[0])


def is_available(name: str) -> bool:
    return name in _ENGINES and _module(name).is_available()


def _gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def check_quant(quant: str | None) -> str | None:
    if quant is None or quant in QUANTS:
        return quant
    raise XuetuError(f"unknown quantisation {quant!r}", f"Choose one of: {', '.join(QUANTS)}.")


def choose(ref: ModelRef, requested: str = "auto", quant: str | None = None) -> str:
    """Pick the engine: GGUF on CPU goes to llama.cpp (fast), everything else to transformers.

    Asking for a quantisation picks transformers, the engine that applies it; llama.cpp refuses one."""
    if requested in ("llamacpp", "llama_cpp", "llama-cpp"):
        requested = "llama.cpp"
    if ref.remote is not None:  # it runs at its provider: no local engine or precision applies
        if requested not in ("auto", "remote") or quant is not None:
            raise XuetuError(f"{ref.name} is a remote model ({ref.remote.label}); it runs at its provider",
                             "Leave out --engine and --quant for it.")
        return "remote"
    if ref.gguf_adapter is not None:  # a LoRA in GGUF: only llama.cpp applies it
        if requested not in ("auto", "llama.cpp") or quant is not None or not is_available("llama.cpp"):
            raise XuetuError(f"{ref.name} holds its LoRA adapter as GGUF, which only the llama.cpp engine applies",
                             "Use --engine llama.cpp (pip install llama-cpp-python), or the model it was exported "
                             f"from ({ref.source.get('id', 'the source')}) on transformers.")
        return "llama.cpp"
    if check_quant(quant) is not None:
        if requested not in ("auto", "transformers"):
            raise XuetuError(f"--quant {quant} applies to the transformers engine, not {requested}",
                             GGUF_QUANT_HINT.format(name=ref.base or ref.name) if requested == "llama.cpp" else
                             "Use --engine transformers.")
        requested = "transformers"
    if requested != "auto":
        if requested not in _ENGINES:
            raise XuetuError(f"unknown engine {requested!r}", f"Choose one of: auto, {', '.join(_ENGINES)}.")
        if not is_available(requested):
            raise XuetuError(f"the {requested} engine is not installed", _module(requested).INSTALL_HINT)
        return requested
    if ref.adapter_dir is None and ref.gguf_file is not None and is_available("llama.cpp") and not _gpu():
        return "llama.cpp"
    return "transformers"


def load(ref: ModelRef | str, engine: str = "auto", quant: str | None = None, **kwargs) -> Engine:
    """Load a model on an engine; quant ("int8", "fp16", "bf16") loads it on transformers at that precision.

    `ref` is a ModelRef or a name, which is resolved (pulling a known model first if it is not stored)."""
    if not isinstance(ref, ModelRef):
        from xuetu.models import resolve

        ref = resolve(ref, pull_missing=True)
    if ref.kind == "embedding":
        raise XuetuError(f"{ref.name} is an embedding model: it turns text into vectors and cannot chat",
                         "Use a chat model such as smollm2:135m.")
    name = choose(ref, engine, quant)
    if quant is not None:
        kwargs["quant"] = quant
    module_name, cls_name = _ENGINES[name].split(":")
    return getattr(importlib.import_module(module_name), cls_name)(ref, **kwargs)
