"""The vLLM engine, for GPUs: `xuetu serve --engine vllm`. Imported only when asked for, so CPU
installs never need vLLM (`pip install vllm` on a CUDA machine adds it).

vLLM batches and pages its KV cache itself, so the server hands it every request at once
(ConcurrentRunner). Its async engine runs on an event loop of its own in a background thread;
`generate` bridges it to the synchronous Engine interface the rest of xuetu speaks.
"""

from __future__ import annotations

import asyncio
import importlib.util
import queue
import threading
import uuid
from collections.abc import Iterator

from xuetu.engines.base import Chunk, GenerateOptions, Messages
from xuetu.engines.messages import check_messages
from xuetu.engines.text import StopStringStream
from xuetu.errors import ContextTooLong, XuetuError
from xuetu.models.ref import ModelRef

INSTALL_HINT = "vLLM needs an NVIDIA GPU: `pip install vllm` on a CUDA machine, then `xuetu serve --engine vllm`."
_DONE = object()


def is_available() -> bool:
    return importlib.util.find_spec("vllm") is not None


def _sampling_params(opts: GenerateOptions, budget: int):
    import vllm

    kwargs = dict(temperature=opts.temperature, top_p=opts.top_p, top_k=opts.top_k if opts.top_k > 0 else -1,
                  max_tokens=budget, seed=opts.seed, repetition_penalty=opts.repeat_penalty)
    if opts.format is not None:
        schema = {"type": "object"} if opts.format == "json" else opts.format
        try:  # vLLM >= 0.10 names it structured_outputs; older releases guided_decoding
            from vllm.sampling_params import StructuredOutputsParams

            kwargs["structured_outputs"] = StructuredOutputsParams(json=schema)
        except ImportError:
            from vllm.sampling_params import GuidedDecodingParams

            kwargs["guided_decoding"] = GuidedDecodingParams(json=schema)
    return vllm.SamplingParams(**kwargs)


class VllmEngine:
    name = "vllm"

    def __init__(self, ref: ModelRef, dtype: str = "auto", gpu_memory_utilization: float = 0.85):
        if not is_available():
            raise XuetuError("the vllm engine is not installed", INSTALL_HINT)
        from transformers import AutoTokenizer
        from vllm import AsyncEngineArgs, AsyncLLMEngine

        if ref.hf_dir is None or ref.adapter_dir is not None:
            raise XuetuError(f"{ref.name} needs a Hugging Face folder for vLLM", "Use --engine transformers for it.")
        self.ref = ref
        self.tokenizer = AutoTokenizer.from_pretrained(ref.hf_dir)
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, name="vllm-loop", daemon=True).start()
        args = AsyncEngineArgs(model=str(ref.hf_dir), dtype=dtype, gpu_memory_utilization=gpu_memory_utilization)
        self.engine = AsyncLLMEngine.from_engine_args(args)
        self.context_length = int(getattr(self.tokenizer, "model_max_length", 0) or 4096)

    @property
    def chat_template(self) -> str | None:
        template = self.tokenizer.chat_template
        return template if isinstance(template, str) else None

    def encode(self, prompt: Messages | str | list[int], tools: list[dict] | None = None) -> list[int]:
        if isinstance(prompt, str):
            return list(self.tokenizer(prompt)["input_ids"])
        if isinstance(prompt, list) and prompt and all(isinstance(t, int) for t in prompt):
            return list(prompt)
        out = self.tokenizer.apply_chat_template(check_messages(prompt), tools=tools, add_generation_prompt=True,
                                                 tokenize=True, return_dict=True)
        return list(out["input_ids"])

    def count_tokens(self, prompt) -> int:
        return len(self.encode(prompt))

    def generate(self, prompt, options: GenerateOptions | None = None) -> Iterator[Chunk]:
        opts = options or GenerateOptions.build(self.ref.params)
        ids = self.encode(prompt)
        if len(ids) >= self.context_length:
            raise ContextTooLong(f"the prompt is {len(ids)} tokens but {self.ref.name} holds {self.context_length}")
        params = _sampling_params(opts, min(opts.max_tokens, self.context_length - len(ids)))
        out: queue.Queue = queue.Queue()
        request_id = uuid.uuid4().hex

        async def pump():
            try:
                async for result in self.engine.generate({"prompt_token_ids": ids}, params, request_id):
                    out.put(result.outputs[0])
            except BaseException as e:
                out.put(e)
            out.put(_DONE)

        future = asyncio.run_coroutine_threadsafe(pump(), self._loop)
        stream = StopStringStream(opts.stop)
        try:
            while (item := out.get()) is not _DONE:
                if isinstance(item, BaseException):
                    raise item
                delta = stream.push(item.text)
                finish = "length" if item.finish_reason == "length" else ("stop" if item.finish_reason else None)
                if stream.stopped:
                    yield Chunk(delta, len(ids), len(item.token_ids), "stop")
                    return
                if finish:
                    yield Chunk(delta + stream.flush(item.text), len(ids), len(item.token_ids), finish)
                    return
                if delta:
                    yield Chunk(delta, len(ids), len(item.token_ids))
        finally:
            if not future.done():
                asyncio.run_coroutine_threadsafe(self.engine.abort(request_id), self._loop)

    def info(self) -> dict:
        return {"engine": self.name, "model": self.ref.name, "device": "cuda", "context_length": self.context_length,
                "adapter": False}

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
