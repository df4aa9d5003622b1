"""Many sequences in one llama.cpp context: the pieces the slot runner (runtime/slots.py) drives.

`SlotContext` is a llama.cpp context over the engine's loaded weights with `slots` sequence ids, each with
a stream of the KV cache of its own, reached through llama-cpp-python's low-level API: a `llama_batch` carries tokens of
several sequences at once, and `llama_decode` advances them all in one pass over the weights. `Answer` is
one answer being generated on a slot: its own sampler chain (repeat penalty, top-k, top-p, temperature,
seed), its JSON or tool grammar, stop strings and token budget.
"""

from __future__ import annotations

import codecs
import ctypes
import random

import numpy as np

from xuetu.engines.base import Chunk, GenerateOptions
from xuetu.engines.text import StopStringStream

REPEAT_WINDOW = 64  # tokens the repetition penalty looks back over, prompt included, as in the transformers engine


def kv_bytes_per_token(engine) -> int:
    """Bytes of f16 keys and values one token takes in the KV cache, from the GGUF's shape."""
    import llama_cpp

    model = engine.llm._model.model
    layers = llama_cpp.llama_model_n_layer(model)
    heads = llama_cpp.llama_model_n_head(model) or 1
    kv_heads = llama_cpp.llama_model_n_head_kv(model) or heads
    head_dim = llama_cpp.llama_model_n_embd(model) // heads
    return 2 * layers * kv_heads * head_dim * 2


class SlotContext:
    """One llama.cpp context with `slots` sequences, each with `pool // slots` tokens of KV cache."""

    def __init__(self, engine, slots: int, pool: int, n_batch: int = 512):
        import llama_cpp
        from llama_cpp import _internals

        params = llama_cpp.llama_context_default_params()
        params.n_ctx = pool
        params.n_batch = params.n_ubatch = n_batch
        params.n_seq_max = slots
        # a stream of its own per sequence: a token's cells, and so its attention sums, do not depend on what else
        # is in the batch, so batched answers equal answers served one at a time (tests/runtime/test_slots.py)
        params.kv_unified = False
        params.n_threads = params.n_threads_batch = engine.threads
        params.no_perf = True
        self.n_batch = n_batch
        self._ctx = _internals.LlamaContext(model=engine.llm._model, params=params, verbose=False)
        self.ctx = self._ctx.ctx
        self.pool = llama_cpp.llama_n_ctx(self.ctx)
        self.memory = llama_cpp.llama_get_memory(self.ctx)
        self.n_vocab = engine.llm.n_vocab()
        self.vocab = engine.llm._model.vocab
        lora = getattr(engine.llm, "_lora_adapter", None)
        if lora is not None:  # llama.cpp applies adapters per context: this context carries the engine's
            adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(lora)
            scales = (ctypes.c_float * 1)(1.0)
            llama_cpp.llama_set_adapters_lora(self.ctx, adapters, 1, scales)
        self._batch = llama_cpp.llama_batch_init(n_batch, 0, 1)
        self._lib = llama_cpp

    # -- the KV cache, per sequence ------------------------------------------------------------------
    def forget(self, seq: int, start: int = 0) -> None:
        """Drop sequence `seq`'s cache from position `start` on."""
        self._lib.llama_memory_seq_rm(self.memory, seq, start, -1)

    def share(self, source: int, target: int, length: int) -> None:
        """Give `target` the first `length` positions of `source`'s cache, instead of evaluating them again."""
        # streams copy whole (llama.cpp copies the buffers at the next decode); then drop what is past the prefix
        self._lib.llama_memory_seq_cp(self.memory, source, target, -1, -1)
        self._lib.llama_memory_seq_rm(self.memory, target, length, -1)

    # -- one step ------------------------------------------------------------------------------------
    def decode(self, entries: list[tuple[int, int, int, bool]]) -> int:
        """Evaluate (token, position, seq, wants_logits) entries in one llama_decode; its return code
        (0 ok, 1 no room in the KV cache, other values errors)."""
        batch = self._batch
        for i, (token, pos, seq, logits) in enumerate(entries):
            batch.token[i] = token
            batch.pos[i] = pos
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = seq
            batch.logits[i] = logits
        batch.n_tokens = len(entries)
        return self._lib.llama_decode(self.ctx, batch)

    def logits(self, index: int) -> np.ndarray:
        """The next-token logits of batch entry `index`, as a writable view (a grammar masks them in place)."""
        ptr = self._lib.llama_get_logits_ith(self.ctx, index)
        return np.ctypeslib.as_array(ptr, shape=(self.n_vocab,))

    def close(self) -> None:
        if self._batch is not None:
            self._lib.llama_batch_free(self._batch)
            self._batch = None
        self._ctx.close()


class Answer:
    """One answer on a slot: sampling, grammar, stop strings and the token budget, as the serial engine has."""

    def __init__(self, engine, prompt: list[int], opts: GenerateOptions, budget: int):
        import llama_cpp

        self.engine = engine
        self.prompt_tokens = len(prompt)
        self.opts = opts
        self.budget = budget
        self.n_out = 0
        self.text = ""
        self.done = False
        self._lib = llama_cpp
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._stream = StopStringStream(opts.stop)
        self.constraint = engine._constraint(opts.format)
        self.sampler = self._chain(opts)
        for token in prompt[-REPEAT_WINDOW:]:  # the penalty sees the end of the prompt, as transformers' does
            llama_cpp.llama_sampler_accept(self.sampler, token)

    def _chain(self, opts: GenerateOptions):
        lib = self._lib
        params = lib.llama_sampler_chain_default_params()
        params.no_perf = True
        chain = lib.llama_sampler_chain_init(params)
        if opts.repeat_penalty != 1.0:
            lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_penalties(
                self.engine.llm.n_vocab(), REPEAT_WINDOW, opts.repeat_penalty, 0.0, 0.0))
        if opts.temperature == 0:
            lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_greedy())
            return chain
        if opts.top_k:
            lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_top_k(opts.top_k))
        if opts.top_p < 1.0:
            lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_top_p(opts.top_p, 1))
        lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_temp(opts.temperature))
        seed = opts.seed if opts.seed is not None else random.randrange(2**31)
        lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_dist(seed))
        return chain

    def pick(self, slots: SlotContext, index: int) -> int:
        """Sample the next token from batch entry `index`'s logits."""
        if self.constraint is not None:
            self.constraint(None, slots.logits(index))
        return self._lib.llama_sampler_sample(self.sampler, slots.ctx, index)

    def advance(self, token: int) -> Chunk | None:
        """Take the sampled token; the chunk to send, or None. Sets `done` at the end."""
        self._lib.llama_sampler_accept(self.sampler, token)
        if self._lib.llama_vocab_is_eog(self.engine.llm._model.vocab, token):
            return self._finish("stop", self._stream.flush(self.text + self._decoder.decode(b"", final=True)))
        if self.constraint is not None:
            self.constraint.accept(token)
        self.n_out += 1
        self.text += self._decoder.decode(self.engine.llm.detokenize([token]))
        delta = self._stream.push(self.text)
        if self._stream.stopped:
            return self._finish("stop", delta)
        if self.constraint is not None and self.constraint.matcher.is_stopped():
            return self._finish("stop", delta + self._stream.flush(self.text))
        if self.n_out >= self.budget:
            self.text += self._decoder.decode(b"", final=True)
            tail = self._stream.flush(self.text)
            return self._finish("stop" if self._stream.stopped else "length", delta + tail)
        return Chunk(delta, self.prompt_tokens, self.n_out) if delta else None

    def _finish(self, reason: str, text: str) -> Chunk:
        self.done = True
        return Chunk(text, self.prompt_tokens, self.n_out, reason)

    def close(self) -> None:
        if self.sampler is not None:
            self._lib.llama_sampler_free(self.sampler)
            self.sampler = None
