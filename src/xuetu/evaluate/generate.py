"""Answers for evaluation, as fast as the engine allows, through the same code that serves them.

Every prompt goes through the runtime layer (`xuetu.runtime`), placed as the server places it: on the
transformers engine the continuous-batching runner (`runtime.batching.BatchRunner`) keeps up to `batch`
answers in flight, and a LoRA adapter joins its base model's runner as a named adapter, so comparing a base
with three of its adapters loads the base once. Other runners (llama.cpp, prompt/prefix-tuned adapters)
answer one prompt at a time. "auto" picks the
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
from xuetu.errors import BadInput, XuetuError


@dataclass
class Generated:
    text: str
    seconds: float
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None
    calls: list[dict] | None = None
    """The tool calls the answer makes, [{"name", "arguments"}], when tools were offered."""

    def to_dict(self) -> dict:
        return {"text": self.text, "seconds": round(self.seconds, 4), "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, **({"error": self.error} if self.error else {}),
                **({"calls": self.calls} if self.calls is not None else {})}


class Models:
    """Models loaded for an evaluation through the runtime layer, shared between the models that can share them
    (adapters ride their base's batching runner); use as a context manager."""

    def __init__(self, engine: str = "auto", batch: int = 8, quant: str | None = None):
        if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
            raise BadInput(f"batch must be an integer >= 1, got {batch!r}", param="batch")
        self.engine, self.batch, self.quant = engine, batch, quant
        self._loaded: dict[tuple, object] = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        for running in self._loaded.values():
            (running.runner if hasattr(running, "runner") else running).close()
        self._loaded.clear()

    def _place(self, name: str):
        from xuetu import models
        from xuetu.runtime.placement import place

        ref = models.resolve(name)
        remote = ref.remote is not None  # runs at its provider: the local engine and precision do not apply
        where = place(ref, "auto" if remote else self.engine, None if remote else self.quant)
        if where.runner == "embedder":
            raise BadInput(f"{ref.name} is an embedding model: it turns text into vectors and cannot answer",
                           "Evaluate a chat model such as smollm2:135m.")
        return ref, where

    def chosen(self, name: str) -> str:
        """The engine `name` runs on here (without loading it)."""
        return self._place(name)[1].engine

    def _get(self, name: str):
        """(ref, running model, placement); the adapter, if any, is loaded on its base's runner."""
        from xuetu.runtime import loading

        ref, where = self._place(name)
        if where.key not in self._loaded:
            self._loaded[where.key] = loading.load(where, self.quant, max_batch=self.batch,
                                                   max_queue=max(64, self.batch))
        running = self._loaded[where.key]
        if where.adapter is not None:
            running.runner.add_adapter(ref.name, str(ref.adapter_dir))
        return ref, running, where

    def engine_for(self, name: str):
        """The engine that runs `name` (for token counts, context length, perplexity)."""
        return self._get(name)[1].encoder

    def scoring_engine(self, name: str):
        """`name` on transformers by itself, adapter applied (perplexity and multiple choice read its logits)."""
        from xuetu import engines, models

        ref = models.resolve(name)
        key = (ref.name, "scoring")
        if key not in self._loaded:
            if ref.remote is not None:
                raise BadInput(f"perplexity, multiple choice and preference scoring read a model's log-probabilities, "
                               f"which the remote model {ref.name} ({ref.remote.label}) does not give",
                               "Score a local model, or evaluate the remote one on question/answer data.")
            if ref.gguf_adapter is not None or ref.prompt_learning:
                raise BadInput(f"perplexity and multiple choice need {ref.name} on the transformers engine with a "
                               "LoRA or no adapter", "Evaluate the model it was exported or trained from.")
            self._loaded[key] = engines.load(ref, engine="transformers", quant=self.quant)
        return self._loaded[key]

    def concurrency(self, name: str) -> int:
        """Answers in flight at once for `name`: the batch on the batching runner, a few for a remote model (its
        provider batches; more would meet its rate limits), else one."""
        where = self._get(name)[2]
        return self.batch if where.runner == "batch" else min(self.batch, REMOTE_CONCURRENCY) \
            if where.engine == "remote" else 1

    def info(self, name: str) -> dict:
        ref, running, _ = self._get(name)
        info = {**running.encoder.info(), "concurrency": self.concurrency(name)}
        if ref.adapter_dir is not None:
            info["adapter_bytes"] = sum(f.stat().st_size for f in ref.adapter_dir.glob("*.safetensors"))
        return info

    def answer(self, name: str, prompts: list[Messages], options: GenerateOptions,
               on_done: Callable[[], None] | None = None, tools: list[list[dict] | None] | None = None
               ) -> list[Generated]:
        """An answer per prompt; with `tools` (per prompt, or None), the model may call them ("auto")."""
        _, running, where = self._get(name)
        return _run(_answer_all(running, prompts, options, where.adapter, self.concurrency(name),
                                on_done or (lambda: None), tools or [None] * len(prompts)))


REMOTE_CONCURRENCY = 4


def _encode(engine, messages, tools: list[dict] | None):
    """(token ids, the dialect to read calls in, the tool names offered) for one prompt."""
    if not tools:
        return engine.encode(messages), None, set()
    from xuetu.tools import parse_tools
    from xuetu.tools.prompt import prepare

    offered = parse_tools(tools)
    rendered, template_tools, dialect = prepare(messages, offered, getattr(engine, "chat_template", None))
    ids = engine.encode(rendered, tools=template_tools) if template_tools else engine.encode(rendered)
    return ids, dialect, {t.name for t in offered}


def _calls(text: str, dialect, known: set[str]) -> tuple[str, list[dict] | None]:
    """The answer's text and calls, read as serving reads them (a malformed or unknown call is no call)."""
    if dialect is None:
        return text, None
    from xuetu.tools.stream import CallSplitter

    splitter = CallSplitter(dialect, known)
    splitter.push(text)
    _, parsed = splitter.finish()
    return parsed.content, [{"name": c.name, "arguments": c.arguments} for c in parsed.calls]


async def _answer_all(running, prompts, options, adapter, concurrency: int, done, tools) -> list[Generated]:
    """Every prompt through the model's runner, `concurrency` at a time; a failed example fails alone."""
    from xuetu.runtime.runner import GenRequest, stream

    gate = asyncio.Semaphore(concurrency)
    engine = running.encoder

    async def one(messages, offered):
        async with gate:
            start = time.perf_counter()
            try:
                ids, dialect, known = _encode(engine, messages, offered)
                if hasattr(engine, "budget"):
                    engine.budget(len(ids), options)  # too long a prompt: this example fails, not the run
                parts, last = [], None
                async for chunk in stream(running.runner, GenRequest(ids, options, adapter=adapter)):
                    parts.append(chunk.text)
                    last = chunk
                text, calls = _calls("".join(parts).strip(), dialect, known)
                result = Generated(text, time.perf_counter() - start, last.prompt_tokens if last else 0,
                                   last.completion_tokens if last else 0, calls=calls)
            except XuetuError as e:
                result = Generated("", time.perf_counter() - start, error=e.message)
            done()
            return result

    return list(await asyncio.gather(*(one(p, t) for p, t in zip(prompts, tools))))


def _run(coro):
    """asyncio.run, also from code that already runs an event loop (Jupyter, Playwright): then in a thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
