"""Loading a placed model: its engine, behind the runner its placement names, and what it weighs in memory."""

from __future__ import annotations

from dataclasses import dataclass

from xuetu import engines
from xuetu.models.ref import ModelRef
from xuetu.runtime.placement import Placement


@dataclass
class Running:
    runner: object
    """What requests are submitted to (BatchRunner, SerialRunner, ConcurrentRunner), or the embedder."""
    encoder: object
    """What tokenizes prompts and knows the context length: the engine, or the embedder."""
    size: int
    """Bytes of weights: measured where the engine reports it, else estimated."""


def estimate_bytes(holder: ModelRef, engine: str, quant: str | None) -> int:
    """Weights in memory before loading them: a GGUF's file size, else parameters x bytes per weight."""
    from xuetu.models.facts import describe

    if engine == "remote":
        return 0  # weights at the provider
    if engine == "llama.cpp" and holder.gguf_file is not None:
        return holder.gguf_file.stat().st_size
    params = describe(holder).parameters or 0
    per_weight = {"int8": 1, "fp16": 2, "bf16": 2}.get(quant, 4 if engine != "vllm" else 2)
    return params * per_weight


def load(placement: Placement, quant: str | None = None, max_batch: int = 16, max_queue: int = 64) -> Running:
    """Load the placed weights and start their runner (blocking: call it off the event loop)."""
    holder = placement.holder
    if placement.runner == "embedder":
        from xuetu.engines.embedder import open_embedder

        emb = open_embedder(holder)
        size = 0 if holder.remote is not None else sum(p.numel() * p.element_size() for p in emb.model.parameters())
        return Running(emb, emb, size)
    quant = quant if placement.engine == "transformers" else None
    eng = engines.load(holder, engine=placement.engine, quant=quant)
    if placement.runner == "batch":
        from xuetu.runtime.batching import BatchRunner

        # measured, INT8 rows and scales included
        return Running(BatchRunner(eng, max_batch=max_batch, max_queue=max_queue), eng, eng.info()["weights_bytes"])
    from xuetu.runtime.runner import ConcurrentRunner, SerialRunner

    cls = ConcurrentRunner if placement.runner == "concurrent" else SerialRunner
    return Running(cls(eng, max_queue), eng, estimate_bytes(holder, placement.engine, quant))
