"""Continuous batching for the transformers engine, with many LoRA adapters over one base.

All running answers advance together: one forward pass per step over a batch whose KV cache
is left-padded to a common length. A new request is prefilled alone, then joins the batch at
the next step; a finished or cancelled one leaves at once. Rows may use different adapters
(PEFT's mixed-batch `adapter_names`), so adapters share the base weights in memory.
"""

from __future__ import annotations

import collections
import threading

import torch
import torch.nn.functional as F

from xuetu.engines import kv
from xuetu.engines.sequence import SequenceState
from xuetu.errors import NotFound
from xuetu.runtime.runner import GenRequest, QueueFull

BASE = "__base__"  # PEFT's name for "no adapter" in a mixed batch


class _Row:
    def __init__(self, request: GenRequest, seq: SequenceState, position: int, token: int):
        self.request = request
        self.seq = seq
        self.position = position  # position id of `token`, the next input
        self.token = token


class BatchRunner:
    def __init__(self, engine, max_batch: int = 16, max_queue: int = 64):
        self.engine = engine
        self.model = engine.model
        self.device = engine.device
        self.max_batch = max_batch
        self.max_queue = max_queue
        self.adapters: dict[str, str] = {}  # name -> folder
        self._waiting: collections.deque[GenRequest] = collections.deque()
        self._pending_adapters: list[tuple[str, str, threading.Event, list]] = []
        self._rows: list[_Row] = []
        self.peak_batch = 0  # most rows ever decoded together (tests and /api/ps show batching happens)
        self._cache = None  # DynamicCache over the rows, keys (B, H, L, D)
        self._mask = None  # (B, L) 1 = real token, 0 = left padding
        self._cv = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._work, name="batch-runner", daemon=True)
        self._thread.start()

    # -- public, thread-safe -----------------------------------------------------------------------
    @property
    def depth(self) -> int:
        return len(self._waiting) + len(self._rows)

    def submit(self, request: GenRequest) -> None:
        if request.adapter is not None and request.adapter not in self.adapters:
            raise NotFound(f"adapter {request.adapter} is not loaded on this runner",
                           "Load it with add_adapter first (a lease does this).", code="adapter_not_loaded")
        with self._cv:
            if self.depth >= self.max_queue:
                raise QueueFull(self.max_queue)
            self._waiting.append(request)
            self._cv.notify()

    def add_adapter(self, name: str, folder: str) -> None:
        """Load a PEFT adapter beside the others (done by the worker between steps; blocks until loaded)."""
        if name in self.adapters:
            return
        done, error = threading.Event(), []
        with self._cv:
            self._pending_adapters.append((name, folder, done, error))
            self._cv.notify()
        done.wait()
        if error:
            raise error[0]

    def close(self) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify()
        self._thread.join(timeout=30)
        self.engine.close()

    # -- the worker --------------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self._cv:
                while not (self._stop or self._waiting or self._rows or self._pending_adapters):
                    self._cv.wait()
                if self._stop:
                    break
                adapters, self._pending_adapters = self._pending_adapters, []
                room = self.max_batch - len(self._rows)
                joining = [self._waiting.popleft() for _ in range(min(room, len(self._waiting)))]
            for name, folder, done, error in adapters:
                try:
                    self._load_adapter(name, folder)
                except Exception as e:
                    error.append(e)
                done.set()
            try:
                with torch.inference_mode():
                    self._admit_all(joining)
                    self._drop_finished()
                    if self._rows:
                        self._step()
                        self._drop_finished()
            except Exception as e:  # a failed step fails its requests, not the server
                for row in self._rows:
                    row.request.emit(e)
                self._reset()

    def _reset(self) -> None:
        """Forget every row and its cache (after a failed step)."""
        self._rows, self._cache, self._mask = [], None, None

    def _load_adapter(self, name: str, folder: str) -> None:
        import warnings

        from peft import PeftModel

        # transformers 5 deprecates a name PEFT still calls; harmless, and noisy on every load
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        if isinstance(self.model, PeftModel):
            self.model.load_adapter(folder, adapter_name=name)
        else:
            self.model = PeftModel.from_pretrained(self.model, folder, adapter_name=name).eval()
        self.adapters[name] = folder

    def _adapter_kwargs(self, rows: list[_Row] | list[GenRequest]) -> dict:
        if not self.adapters:
            return {}
        names = [(r.request if isinstance(r, _Row) else r).adapter or BASE for r in rows]
        return {"adapter_names": names}

    def _admit_all(self, requests: list[GenRequest]) -> None:
        for request in requests:  # each prefilled alone: its cache is joined to the batch's, left-padded
            self._admit(request)

    def _admit(self, request: GenRequest) -> None:
        if request.cancelled.is_set():
            return
        try:
            seq = self.engine.new_sequence(request.prompt, request.options)
        except Exception as e:
            request.emit(e)
            return
        ids = torch.tensor([request.prompt], device=self.device)  # (1, T)
        out, cache = kv.step(self.model, input_ids=ids, **self._adapter_kwargs([request]))
        token = seq.pick(out.logits[0, -1].float())
        row = _Row(request, seq, len(request.prompt), token)
        if self._emit(row, seq.advance(token)):
            self._join(row, cache, len(request.prompt))

    def _emit(self, row: _Row, chunk) -> bool:
        """Send a chunk; True while the row goes on."""
        if chunk is not None:
            row.request.emit(chunk)
        return not row.seq.done

    def _join(self, row: _Row, cache, length: int) -> None:
        from transformers import DynamicCache

        new_mask = torch.ones(1, length, dtype=torch.long, device=self.device)
        if self._cache is None:
            self._cache, self._mask, self._rows = cache, new_mask, [row]
            return
        old_len = self._mask.shape[1]
        total = max(old_len, length)
        layers = []
        for old, new in zip(self._cache.layers, cache.layers):
            # left-pad both to the common length along the sequence axis (dim -2 of (B, H, L, D))
            keys = torch.cat([F.pad(old.keys, (0, 0, total - old_len, 0)), F.pad(new.keys, (0, 0, total - length, 0))])
            values = torch.cat([F.pad(old.values, (0, 0, total - old_len, 0)),
                                F.pad(new.values, (0, 0, total - length, 0))])
            layers.append((keys, values))
        self._cache = DynamicCache(ddp_cache_data=layers, config=self.model.config)
        self._mask = torch.cat([F.pad(self._mask, (total - old_len, 0)), F.pad(new_mask, (total - length, 0))])
        self._rows.append(row)

    def _step(self) -> None:
        rows = self._rows
        self.peak_batch = max(self.peak_batch, len(rows))
        ids = torch.tensor([[r.token] for r in rows], device=self.device)  # (B, 1)
        positions = torch.tensor([[r.position] for r in rows], device=self.device)  # (B, 1)
        mask = torch.cat([self._mask, torch.ones(len(rows), 1, dtype=torch.long, device=self.device)], dim=1)
        out, self._cache = kv.step(self.model, self._cache, input_ids=ids, attention_mask=mask, position_ids=positions,
                                   **self._adapter_kwargs(rows))
        self._mask = mask
        logits = out.logits[:, -1].float()  # (B, vocab)
        for i, row in enumerate(rows):
            if row.request.cancelled.is_set():
                row.seq.done = True
                continue
            row.token = row.seq.pick(logits[i])
            row.position += 1
            self._emit(row, row.seq.advance(row.token))

    def _drop_finished(self) -> None:
        keep = [i for i, r in enumerate(self._rows) if not (r.seq.done or r.request.cancelled.is_set())]
        if len(keep) == len(self._rows):
            return
        if not keep:
            self._rows, self._cache, self._mask = [], None, None
            return
        self._rows = [self._rows[i] for i in keep]
        self._cache.batch_select_indices(torch.tensor(keep, device=self.device))
        self._mask = self._mask[keep]
        # columns that are padding in every remaining row are dead weight: cut them
        start = int((self._mask.sum(dim=0) > 0).nonzero()[0])
        if start:
            self._mask = self._mask[:, start:]
            for layer in self._cache.layers:
                layer.keys, layer.values = layer.keys[:, :, start:], layer.values[:, :, start:]
