"""Answers for evaluation, as fast as the engine allows, through the same code that serves them.

On the transformers engine every prompt goes through the server's continuous-batching runner
(`serve.batching.BatchRunner`) with up to `batch` answers in flight; a LoRA adapter joins its base model's
runner as a named adapter, so comparing a base with three of its adapters loads the base once. Other
engines (llama.cpp, prompt/prefix-tuned adapters, INT8) answer one prompt at a time. "auto" picks the
engine `xuetu run` and `xuetu serve` pick (llama.cpp for a GGUF model on a CPU), so an evaluation measures
what is deployed; comparisons put every row on one engine (see compare.py). Latency is measured
per answer from its submission to its last token, at that concurrency.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from xuetu.engines.base import GenerateOptions, Messages
from xuetu.errors import XuetuError


@dataclass
class Generated:
    text: str
    seconds: float
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None

    def to_dict(self) -> dict:
        return {"text": self.text, "seconds": round(self.seconds, 4), "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, **({"error": self.error} if self.error else {})}


class _Loaded:
    def __init__(self, engine, runner=None):
        self.engine = engine
        self.runner = runner

    def close(self):
        (self.runner or self.engine).close()


class Models:
    """Engines loaded for an evaluation, shared between the models that can share them; use as a context manager."""

    def __init__(self, engine: str = "auto", batch: int = 8, quant: str | None = None):
        if not isinstance(batch, int) or batch < 1:
            raise XuetuError(f"batch must be an integer >= 1, got {batch!r}")
        self.engine, self.batch, self.quant = engine, batch, quant
        self._loaded: dict[tuple, _Loaded] = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        for loaded in self._loaded.values():
            loaded.close()
        self._loaded.clear()

    def chosen(self, name: str) -> str:
        """The engine `name` runs on here (without loading it)."""
        from xuetu import engines, models

        return engines.choose(models.resolve(name), self.engine, self.quant)

    def _get(self, name: str):
        """(ref, loaded, adapter name or None)."""
        from xuetu import engines, models

        ref = models.resolve(name)
        chosen = engines.choose(ref, self.engine, self.quant)
        shared = chosen == "transformers" and self.quant is None and not ref.prompt_learning
        holder = models.resolve(ref.base) if shared and ref.base and ref.adapter_dir else ref
        key = (holder.name, chosen, shared)
        if key not in self._loaded:
            eng = engines.load(holder, engine=chosen, quant=self.quant)
            runner = None
            if shared:
                from xuetu.serve.batching import BatchRunner

                runner = BatchRunner(eng, max_batch=self.batch, max_queue=max(64, self.batch))
            self._loaded[key] = _Loaded(eng, runner)
        loaded = self._loaded[key]
        adapter = None
        if loaded.runner is not None and holder is not ref:
            loaded.runner.add_adapter(ref.name, str(ref.adapter_dir))
            adapter = ref.name
        return ref, loaded, adapter

    def engine_for(self, name: str):
        """The engine that runs `name` (for token counts, context length, perplexity)."""
        return self._get(name)[1].engine

    def scoring_engine(self, name: str):
        """`name` on transformers by itself, adapter applied (perplexity and multiple choice read its logits)."""
        from xuetu import engines, models

        ref = models.resolve(name)
        key = (ref.name, "scoring")
        if key not in self._loaded:
            if ref.gguf_adapter is not None or ref.prompt_learning:
                raise XuetuError(f"perplexity and multiple choice need {ref.name} on the transformers engine with a "
                                 "LoRA or no adapter", "Evaluate the model it was exported or trained from.")
            self._loaded[key] = _Loaded(engines.load(ref, engine="transformers", quant=self.quant))
        return self._loaded[key].engine

    def concurrency(self, name: str) -> int:
        """Answers in flight at once for `name`: the batch on the batching runner, else one."""
        return self.batch if self._get(name)[1].runner is not None else 1

    def info(self, name: str) -> dict:
        ref, loaded, _ = self._get(name)
        info = {**loaded.engine.info(), "concurrency": self.batch if loaded.runner is not None else 1}
        if ref.adapter_dir is not None:
            info["adapter_bytes"] = sum(f.stat().st_size for f in ref.adapter_dir.glob("*.safetensors"))
        return info

    def answer(self, name: str, prompts: list[Messages], options: GenerateOptions,
               on_done: Callable[[], None] | None = None) -> list[Generated]:
        ref, loaded, adapter = self._get(name)
        done = on_done or (lambda: None)
        if loaded.runner is not None:
            return _run(self._batched(loaded, prompts, options, adapter, done))
        out = []
        for p in prompts:
            out.append(_one(loaded.engine, p, options))
            done()
        return out

    async def _batched(self, loaded: _Loaded, prompts, options, adapter, done) -> list[Generated]:
        from xuetu.serve.runner import GenRequest, stream

        gate = asyncio.Semaphore(self.batch)

        async def one(messages):
            async with gate:
                start = time.perf_counter()
                try:
                    ids = loaded.engine.encode(messages)
                    loaded.engine.budget(len(ids), options)  # too long a prompt: this example fails, not the run
                    parts, last = [], None
                    async for chunk in stream(loaded.runner, GenRequest(ids, options, adapter=adapter)):
                        parts.append(chunk.text)
                        last = chunk
                    result = Generated("".join(parts).strip(), time.perf_counter() - start,
                                       last.prompt_tokens, last.completion_tokens)
                except XuetuError as e:
                    result = Generated("", time.perf_counter() - start, error=e.message)
                done()
                return result

        return list(await asyncio.gather(*(one(p) for p in prompts)))


def _run(coro):
    """asyncio.run, also from code that already runs an event loop (Jupyter, Playwright): then in a thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _one(engine, messages: Messages, options: GenerateOptions) -> Generated:
    start = time.perf_counter()
    parts, last = [], None
    try:
        for chunk in engine.generate(messages, options):
            parts.append(chunk.text)
            last = chunk
    except XuetuError as e:
        return Generated("", time.perf_counter() - start, error=e.message)
    return Generated("".join(parts).strip(), time.perf_counter() - start,
                     last.prompt_tokens if last else 0, last.completion_tokens if last else 0)
