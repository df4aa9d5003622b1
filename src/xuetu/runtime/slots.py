"""Continuous batching with prefix caching for the llama.cpp engine.

One llama.cpp context holds `slots` sequences (a stream of the KV cache each). Every step is one `llama_decode`
whose batch carries the next token of every running answer plus prompt chunks of newly admitted ones,
so the weights are read once for all of them: on a CPU, where decoding is bound by memory bandwidth,
sixteen answers cost little more than one.

A slot keeps its cache when its answer ends. A new request goes to the free slot whose cached tokens share
the longest prefix with its prompt (the previous turn of the same conversation), and only the new tokens are
evaluated. A prefix another slot holds (a shared system prompt, a knowledge-base preamble) is shared into the
chosen slot instead of evaluated again. Each slot has a stream of the cache of its own, so what runs beside an
answer does not change it; a seeded request is evaluated whole, so the same seed gives the same answer whatever
was served before it.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, field

from xuetu.engines.base import Chunk
from xuetu.engines.kv import plan_slots
from xuetu.engines.llamacpp_slots import Answer, SlotContext, kv_bytes_per_token
from xuetu.errors import ContextTooLong, Unavailable
from xuetu.runtime.runner import GenRequest, QueueFull

MIN_SLOT_CTX = 2048
"""Tokens of KV cache for all slots together unless --max-memory allows less: 16 slots of 4096 tokens."""


@dataclass
class Slot:
    id: int
    cached: list[int] = field(default_factory=list)
    """Tokens whose keys and values are in the cache for this sequence, positions 0..len-1."""
    request: GenRequest | None = None
    answer: Answer | None = None
    todo: list[int] = field(default_factory=list)
    """Prompt tokens still to evaluate (prefill), or the one sampled token to feed next."""
    last_used: float = 0.0

    @property
    def busy(self) -> bool:
        return self.request is not None


def common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def plan_memory(context_length: int, per_token: int, slots: int, budget: int | None) -> tuple[int, int]:
    """(slots, tokens of context per slot): engines/kv.plan_slots with at least MIN_SLOT_CTX tokens a slot, a
    shared length a multiple of 256 (llama.cpp pads a sequence's context to it)."""
    return plan_slots(context_length, per_token, slots, budget, MIN_SLOT_CTX, align=256)


class SlotRunner:
    """Requests on a llama.cpp engine, decoded together in one context (see the module's docstring)."""

    def __init__(self, engine, slots: int = 16, max_queue: int = 64, kv_budget: int | None = None):
        self.engine = engine
        self.max_queue = max_queue
        per_token = kv_bytes_per_token(engine)
        n_slots, self.context_length = plan_memory(engine.context_length, per_token, slots, kv_budget)
        engine.context_length = self.context_length  # what a prompt is checked against before it is queued
        self.ctx = SlotContext(engine, n_slots, n_slots * self.context_length)
        self.kv_bytes = self.ctx.pool * per_token
        self.slots = [Slot(i) for i in range(n_slots)]
        self.peak_batch = 0
        self.stats = {"prompt_tokens": 0, "cached_tokens": 0, "shared_tokens": 0}
        """Prompt tokens asked for; of them, found in the slot's own cache; and shared from another slot."""
        self._waiting: collections.deque[GenRequest] = collections.deque()
        self._cv = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._work, name="llama-slots", daemon=True)
        self._thread.start()

    # -- public, thread-safe -----------------------------------------------------------------------
    @property
    def depth(self) -> int:
        return len(self._waiting) + sum(s.busy for s in self.slots)

    def submit(self, request: GenRequest) -> None:
        with self._cv:
            if self.depth >= self.max_queue:
                raise QueueFull(self.max_queue)
            self._waiting.append(request)
            self._cv.notify()

    def info(self) -> dict:
        return {"slots": len(self.slots), "slot_context": self.context_length, "kv_cache_tokens": self.ctx.pool,
                "kv_cache_bytes": self.kv_bytes, "busy_slots": sum(s.busy for s in self.slots), **self.stats}

    def close(self) -> None:
        self.close_slots()
        self.engine.close()

    def close_slots(self) -> None:
        """Stop the worker and free the context, leaving the engine (its weights) loaded."""
        with self._cv:
            self._stop = True
            self._cv.notify()
        self._thread.join(timeout=30)
        for slot in self.slots:
            if slot.answer is not None:
                slot.answer.close()
        self.ctx.close()

    # -- the worker --------------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self._cv:
                while not (self._stop or self._waiting or any(s.busy for s in self.slots)):
                    self._cv.wait()
                if self._stop:
                    break
            try:
                self._admit()
                self._drop_cancelled()
                if any(s.busy for s in self.slots):
                    self._step()
            except Exception as e:  # a failed step fails its requests, never the worker
                for slot in self.slots:
                    if slot.busy:
                        self._end(slot, e)
                        slot.cached = []
                        self.ctx.forget(slot.id)

    def _admit(self) -> None:
        while True:
            with self._cv:
                free = [s for s in self.slots if not s.busy]
                if not free or not self._waiting:
                    return
                request = self._waiting.popleft()
            if request.cancelled.is_set():
                continue
            try:
                self._start(request, free)
            except Exception as e:
                request.emit(e)

    def _start(self, request: GenRequest, free: list[Slot]) -> None:
        prompt = request.prompt
        if len(prompt) >= self.context_length:
            raise ContextTooLong(f"the prompt is {len(prompt)} tokens but {self.engine.ref.name} holds "
                                 f"{self.context_length}", "Shorten the conversation or the prompt.")
        seeded = request.options.seed is not None
        # the free slot with the longest cached prefix; ties go to the one idle longest
        slot = max(free, key=lambda s: (0 if seeded else common_prefix(s.cached, prompt), -s.last_used))
        keep = 0 if seeded else min(common_prefix(slot.cached, prompt), len(prompt) - 1)
        donor, shared = None, keep
        if not seeded:
            for other in self.slots:
                n = min(common_prefix(other.cached, prompt), len(prompt) - 1)
                if other is not slot and n > shared:
                    donor, shared = other, n
        if donor is not None:
            self.ctx.share(donor.id, slot.id, shared)
            self.stats["shared_tokens"] += shared
            keep = shared
        else:
            self.ctx.forget(slot.id, keep)
            self.stats["cached_tokens"] += keep
        self.stats["prompt_tokens"] += len(prompt)
        slot.cached = list(prompt[:keep])
        slot.todo = list(prompt[keep:])
        budget = min(request.options.max_tokens, self.context_length - len(prompt))
        slot.answer = Answer(self.engine, prompt, request.options, budget)
        slot.request = request

    def _drop_cancelled(self) -> None:
        for slot in self.slots:
            if slot.busy and slot.request.cancelled.is_set():
                self._end(slot)

    def _step(self) -> None:
        """One llama_decode: the next token of every answer, then prompt chunks while the batch has room."""
        entries, owners = [], []  # owners[i]: the slot whose answer samples from entry i, if any
        decoding = [s for s in self.slots if s.busy and s.answer.n_out > 0]
        prefilling = [s for s in self.slots if s.busy and s.answer.n_out == 0]
        for slot in decoding + prefilling:
            room = self.ctx.n_batch - len(entries)
            if room <= 0:
                break
            take = slot.todo[:room]
            for j, token in enumerate(take):
                last = j == len(take) - 1 and len(take) == len(slot.todo)
                entries.append((token, len(slot.cached) + j, slot.id, last))
                owners.append(slot if last else None)
            slot.cached.extend(take)
            slot.todo = slot.todo[len(take):]
        self.peak_batch = max(self.peak_batch, sum(o is not None for o in owners))
        rc = self.ctx.decode(entries)
        if rc != 0:  # a slot's stream holds its whole context, so this is llama.cpp failing, not a full cache
            raise Unavailable(f"llama.cpp failed to decode (llama_decode returned {rc})", code="decode_failed")
        for index, slot in enumerate(owners):
            if slot is None:
                continue
            token = slot.answer.pick(self.ctx, index)
            chunk = slot.answer.advance(token)
            if slot.answer.done:
                self._end(slot, chunk)
            else:
                slot.todo = [token]
                if chunk is not None:
                    slot.request.emit(chunk)

    def _end(self, slot: Slot, final: Chunk | BaseException | None = None) -> None:
        """Free the slot (its cache stays for the next turn), then send the answer's last chunk or error."""
        request = slot.request
        slot.todo = []  # a sampled token not yet evaluated, or an unfinished prompt: `cached` stays exact
        slot.answer.close()
        slot.answer = None
        slot.request = None
        slot.last_used = time.monotonic()
        if final is not None:
            request.emit(final)
