"""Loading a placed model: its engine, behind the runner its placement names, and what it weighs in memory."""

from __future__ import annotations

import os
from dataclasses import dataclass

from xuetu import engines
from xuetu.models.ref import ModelRef
from xuetu.runtime.placement import Placement


SERVED_OWN_CTX = 256
"""A served llama.cpp engine's own context: its runner decodes in a context of its own (runtime/slots.py)."""


@dataclass
class Running:
    runner: object
    """What requests are submitted to (StaticBatchRunner, BatchRunner, SlotRunner, SerialRunner, ConcurrentRunner), or
    the embedder."""
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


def load(placement: Placement, quant: str | None = None, max_batch: int = 16, max_queue: int = 64,
         memory_left: int | None = None) -> Running:
    """Load the placed weights and start their runner (blocking: call it off the event loop). `memory_left` is
    what --max-memory leaves for this model: the llama.cpp slot runner and the static batch runner size their KV
    caches within it."""
    holder = placement.holder
    if placement.runner == "embedder":
        from xuetu.engines.embedder import open_embedder

        emb = open_embedder(holder)
        size = 0 if holder.remote is not None else sum(p.numel() * p.element_size() for p in emb.model.parameters())
        return Running(emb, emb, size)
    quant = quant if placement.engine == "transformers" else None
    if placement.runner == "slots":
        from xuetu.runtime.slots import SlotRunner

        eng = engines.load(holder, engine=placement.engine, own_ctx=SERVED_OWN_CTX)
        weights = estimate_bytes(holder, placement.engine, None)
        budget = None if memory_left is None else memory_left - weights
        runner = SlotRunner(eng, slots=max_batch, max_queue=max_queue, kv_budget=budget)
        return Running(runner, eng, weights + runner.kv_bytes)
    eng = engines.load(holder, engine=placement.engine, quant=quant)
    if placement.runner == "batch":
        return batch_runner(eng, max_batch, max_queue, memory_left)
    from xuetu.runtime.runner import ConcurrentRunner, SerialRunner

    cls = ConcurrentRunner if placement.runner == "concurrent" else SerialRunner
    return Running(cls(eng, max_queue), eng, estimate_bytes(holder, placement.engine, quant))


def batch_runner(eng, max_batch: int, max_queue: int, memory_left: int | None) -> Running:
    """Continuous batching on the transformers engine: over a static KV cache sized within what --max-memory leaves
    (and, on CUDA, within the card's free memory) for the model families it decodes exactly; otherwise, or with
    XUETU_STATIC_KV=0, today's BatchRunner, whose cache grows with its answers. The static path is the default on
    CUDA only: on a 2-core CPU it measured 0.93x BatchRunner's single-stream speed and 1.32x at 8 streams, within
    that machine's noise, and it would shrink a CPU-served model's context to its slot (XUETU_STATIC_KV=1 opts in)."""
    from xuetu.engines import static_kv

    weights = eng.info()["weights_bytes"]  # measured, INT8 rows and scales included
    default = "1" if str(eng.device).startswith("cuda") else "0"
    if static_kv.supports(eng.model) and os.environ.get("XUETU_STATIC_KV", default) != "0":
        from xuetu.runtime.static_batching import StaticBatchRunner

        budget = None if memory_left is None else memory_left - weights
        runner = StaticBatchRunner(eng, max_batch=max_batch, max_queue=max_queue, kv_budget=budget)
        return Running(runner, eng, weights + runner.kv_bytes)
    from xuetu.runtime.batching import BatchRunner

    return Running(BatchRunner(eng, max_batch=max_batch, max_queue=max_queue), eng, weights)
