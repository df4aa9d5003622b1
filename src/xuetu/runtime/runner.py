"""Runners (part of the runtime layer): a loaded model serving many requests, each on its own worker thread.

A request is submitted with token ids already encoded; its chunks come back on an asyncio
queue, so the HTTP layer can stream them. Setting `cancelled` (a client went away) frees the
request's slot at the next token. Queues are bounded: a full queue refuses with QueueFull.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from xuetu.engines.base import Chunk, GenerateOptions
from xuetu.errors import RateLimited


class QueueFull(RateLimited):
    """The model's queue is at capacity; the client should retry later."""

    code = "queue_full"

    def __init__(self, max_queue: int):
        super().__init__(f"the queue for this model is full ({max_queue} requests)", retry_after=1)


@dataclass
class GenRequest:
    prompt: list[int]
    options: GenerateOptions
    adapter: str | None = None
    """Name of the LoRA adapter to apply, or None for the base model."""
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    cancelled: threading.Event = field(default_factory=threading.Event)
    loop: asyncio.AbstractEventLoop | None = None
    queue: asyncio.Queue | None = None

    def emit(self, item: Chunk | BaseException) -> None:
        """Hand a chunk (or the error that ended the request) to the waiting coroutine; thread-safe."""
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)


async def stream(runner, request: GenRequest) -> AsyncIterator[Chunk]:
    """Submit and yield the chunks as they come; stopping early cancels the generation."""
    request.loop = asyncio.get_running_loop()
    request.queue = asyncio.Queue()
    runner.submit(request)
    try:
        while True:
            item = await request.queue.get()
            if isinstance(item, BaseException):
                raise item
            yield item
            if item.finish_reason is not None:
                return
    finally:
        request.cancelled.set()


class SerialRunner:
    """One request at a time over any Engine (llama.cpp keeps one KV cache, so it cannot interleave)."""

    def __init__(self, engine, max_queue: int = 64):
        self.engine = engine
        self.max_queue = max_queue
        self._queue: queue.Queue[GenRequest | None] = queue.Queue()
        self._busy = 0
        self._thread = threading.Thread(target=self._work, name=f"runner-{engine.name}", daemon=True)
        self._thread.start()

    @property
    def depth(self) -> int:
        """Requests waiting or running."""
        return self._queue.qsize() + self._busy

    def submit(self, request: GenRequest) -> None:
        if self.depth >= self.max_queue:
            raise QueueFull(self.max_queue)
        self._queue.put(request)

    def _work(self) -> None:
        while (request := self._queue.get()) is not None:
            if request.cancelled.is_set():
                continue
            self._busy = 1
            try:
                for chunk in self.engine.generate(request.prompt, request.options):
                    if request.cancelled.is_set():
                        break  # the client went away: stop decoding for it
                    request.emit(chunk)
            except BaseException as e:  # delivered to the request, never kills the worker
                request.emit(e)
            finally:
                self._busy = 0

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)
        self.engine.close()


class ConcurrentRunner:
    """Each request on its own thread, for engines that batch internally (vLLM)."""

    def __init__(self, engine, max_queue: int = 256):
        self.engine = engine
        self.max_queue = max_queue
        self._active = 0
        self._lock = threading.Lock()

    @property
    def depth(self) -> int:
        return self._active

    def submit(self, request: GenRequest) -> None:
        with self._lock:
            if self._active >= self.max_queue:
                raise QueueFull(self.max_queue)
            self._active += 1
        threading.Thread(target=self._run, args=(request,), daemon=True).start()

    def _run(self, request: GenRequest) -> None:
        try:
            # an engine that can stop at once (a remote one closes its connection) is told when the client leaves
            extra = {"cancelled": request.cancelled} if getattr(self.engine, "cancellable", False) else {}
            for chunk in self.engine.generate(request.prompt, request.options, **extra):
                if request.cancelled.is_set():
                    break
                request.emit(chunk)
        except BaseException as e:
            request.emit(e)
        finally:
            with self._lock:
                self._active -= 1

    def close(self) -> None:
        self.engine.close()
