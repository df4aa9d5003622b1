"""Continuous batching over a preallocated KV cache (engines/static_kv.py): the transformers engine on a GPU.

Same contract as BatchRunner (submit, adapters, cancellation), different memory: each running answer owns a slot
of a cache allocated once at load, sized by a memory budget. Requests admitted in the same step are prefilled
together in one right-padded forward that writes their keys and values into their slots; then every step is one
forward over the low slots (padded to a bucket of 1, 2, 4, 8, 16 ... rows, free slots riding as dummies), each row
writing at its own position. Nothing is concatenated or copied when answers join or leave.

On CUDA the decode forward is compiled with CUDA graphs (`torch.compile(mode="reduce-overhead")`), one graph
per bucket, unless XUETU_COMPILE=0; a compile that fails logs once and the runner goes on eagerly. LoRA rows
(PEFT's `adapter_names`) decode here too, eagerly: PEFT routes rows to adapters in Python hooks that a graph
would freeze.
"""

from __future__ import annotations

import logging
import os

import torch

from xuetu.engines import static_kv
from xuetu.engines.static_kv import StaticKV
from xuetu.runtime.batching import BASE, BatchRunner, _Row
from xuetu.runtime.runner import GenRequest

log = logging.getLogger("xuetu.runtime")

PREFILL_TOKENS = 16384
"""Most padded tokens in one prefill forward: more joining prompts are split across forwards, by length."""
WINDOW = 64
"""Eager decode attends over the slots' first positions up to the longest row, rounded up to this."""


def compile_wanted(device: str) -> bool:
    """CUDA graphs for the decode step: on by default on CUDA, never on the CPU (no graphs there)."""
    return str(device).startswith("cuda") and os.environ.get("XUETU_COMPILE", "1") != "0"


def bucket(n: int, most: int) -> int:
    """The decode batch for `n` low slots: the next power of two, at most `most` (few shapes, few graphs)."""
    size = 1
    while size < n:
        size *= 2
    return min(size, most)


class StaticBatchRunner(BatchRunner):
    """BatchRunner's worker and adapters over a static cache of `slots` x `max_len` tokens (see the docstring)."""

    def __init__(self, engine, max_batch: int = 16, max_queue: int = 64, kv_budget: int | None = None,
                 compile: bool | None = None):
        per_token = static_kv.bytes_per_token(engine.model.config, engine.dtype)
        budgets = [b for b in (kv_budget, static_kv.device_budget(engine.device)) if b is not None]
        slots, self.max_len = static_kv.plan(engine.context_length, per_token, max_batch,
                                             min(budgets) if budgets else None)
        engine.context_length = self.max_len  # what a prompt is checked against before it is queued
        static_kv.use_static_attention(engine.model)
        self.kv = StaticKV(engine.model.config, slots, self.max_len, engine.dtype, engine.device)
        self.kv_bytes = self.kv.bytes
        self._free = list(range(slots))  # slots without an answer, lowest taken first: rows stay in the low slots
        self.forwards = 0  # model forwards run (tests count prefills)
        self._index = torch.arange(max(slots, self.max_len), device=engine.device)  # slot and position numbers
        self._compiled = None
        if compile_wanted(engine.device) if compile is None else compile:
            self.kv.mark_static()
            self._compiled = torch.compile(self._decode_forward, mode="reduce-overhead", dynamic=False)
        super().__init__(engine, max_batch=slots, max_queue=max_queue)

    def _work(self) -> None:
        self._warm()
        super()._work()

    def _warm(self) -> None:
        """Capture one graph per decode bucket before the first request, on the worker's thread (CUDA graph trees
        belong to the thread that records them), so no answer waits for a compile. No rows exist yet: the dummy
        steps write position 0 of free slots."""
        if self._compiled is None:
            return
        sizes = sorted({bucket(n, self.kv.slots) for n in range(1, self.kv.slots + 1)})
        with torch.inference_mode():
            for size in sizes:
                zero = torch.zeros(size, 1, dtype=torch.long, device=self.device)
                for _ in range(2):  # reduce-overhead records on the second call of a shape
                    self._decode(zero, zero, 1, {})

    def info(self) -> dict:
        return {"slots": self.kv.slots, "slot_context": self.max_len, "kv_cache_tokens": self.kv.slots * self.max_len,
                "kv_cache_bytes": self.kv_bytes, "busy_slots": len(self._rows)}

    def _reset(self) -> None:
        self._rows = []
        self._free = list(range(self.kv.slots))

    # -- prefill -------------------------------------------------------------------------------------
    def _admit_all(self, requests: list[GenRequest]) -> None:
        starting = []
        for request in requests:
            if request.cancelled.is_set():
                continue
            try:  # raises ContextTooLong for a prompt that leaves no room in a slot
                starting.append((request, self.engine.new_sequence(request.prompt, request.options)))
            except Exception as e:
                request.emit(e)
        starting.sort(key=lambda s: len(s[0].prompt))
        group: list = []
        for item in starting:  # shortest first, so each forward pads little
            if group and (len(group) + 1) * len(item[0].prompt) > PREFILL_TOKENS:
                self._prefill(group)
                group = []
            group.append(item)
        if group:
            self._prefill(group)

    def _prefill(self, starting: list) -> None:
        """One forward over the prompts, right-padded; each row's keys and values land in its own slot."""
        lengths = [len(r.prompt) for r, _ in starting]
        T = max(lengths)
        ids = torch.zeros(len(starting), T, dtype=torch.long)
        for i, (request, _) in enumerate(starting):
            ids[i, :lengths[i]] = torch.tensor(request.prompt)
        slots = [self._free.pop(0) for _ in starting]
        last = torch.tensor(lengths, device=self.device)[:, None] - 1  # (B, 1) each row's last prompt token
        positions = torch.arange(T, device=self.device).expand(len(starting), T)  # (B, T)
        self.forwards += 1
        try:
            out = self.model(input_ids=ids.to(self.device), position_ids=positions, use_cache=False,
                             logits_to_keep=last, xuetu_kv=self.kv, xuetu_slots=torch.tensor(slots, device=self.device),
                             **self._adapter_kwargs([r for r, _ in starting]))
        except Exception as e:  # these requests are not rows yet: the worker's handler would not reach them
            self._free = sorted(self._free + slots)
            for request, _ in starting:
                request.emit(e)
            return
        logits = out.logits[:, -1].float()  # (B, vocab)
        for i, (request, seq) in enumerate(starting):
            token = seq.pick(logits[i])
            row = _Row(request, seq, lengths[i], token)
            row.slot = slots[i]
            self._rows.append(row)
            self._emit(row, seq.advance(token))

    # -- decode --------------------------------------------------------------------------------------
    def _step(self) -> None:
        rows = self._rows
        self.peak_batch = max(self.peak_batch, len(rows))
        B = bucket(max(r.slot for r in rows) + 1, self.kv.slots)
        ids = torch.zeros(B, 1, dtype=torch.long)  # free slots below the top one decode a dummy at position 0
        positions = torch.zeros(B, 1, dtype=torch.long)
        names = [BASE] * B
        for r in rows:
            ids[r.slot, 0], positions[r.slot, 0], names[r.slot] = r.token, r.position, r.request.adapter or BASE
        ids, positions = ids.to(self.device), positions.to(self.device)
        logits = self._decode(ids, positions, max(r.position for r in rows) + 1,
                              {"adapter_names": names} if self.adapters else {})
        for row in rows:
            if row.request.cancelled.is_set():
                row.seq.done = True
                continue
            row.token = row.seq.pick(logits[row.slot])
            row.position += 1
            self._emit(row, row.seq.advance(row.token))

    def _decode(self, ids, positions, longest: int, adapter: dict) -> torch.Tensor:
        """(B, vocab) float logits of one step: the captured graph when there is one and no adapters ride."""
        self.forwards += 1
        if self._compiled is not None and not adapter:
            try:
                return self._compiled(ids, positions, self._valid(positions, self.max_len)).float().clone()
            except Exception as e:  # the step is idempotent (same writes at the same positions): redo it eagerly
                log.warning("decode step not compiled (%s: %s); decoding eagerly", type(e).__name__, e)
                self._compiled = None
        window = min(self.max_len, -(-longest // WINDOW) * WINDOW)
        return self._decode_forward(ids, positions, self._valid(positions, window), **adapter).float()

    def _valid(self, positions, window: int) -> torch.Tensor:
        """(B, 1, 1, window) bool: a row sees its slot's positions up to and including the one it writes now."""
        return (self._index[:window] <= positions)[:, None, None, :]

    def _decode_forward(self, ids, positions, mask, **adapter) -> torch.Tensor:
        out = self.model(input_ids=ids, position_ids=positions, attention_mask=mask, use_cache=False,
                         xuetu_kv=self.kv, xuetu_slots=self._index[:ids.shape[0]], **adapter)  # row b is slot b
        return out.logits[:, -1]  # (B, vocab)

    def _drop_finished(self) -> None:
        keep = []
        for row in self._rows:
            if row.seq.done or row.request.cancelled.is_set():
                self._free.append(row.slot)
            else:
                keep.append(row)
        self._rows = keep
        self._free.sort()
