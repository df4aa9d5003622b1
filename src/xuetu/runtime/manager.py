"""The model manager: which models are resident, loading them on first use and unloading them
when idle past their keep-alive, within a cap on count and on memory.

A request holds a model through a `Lease`, used as `async with manager.lease(name) as lease:` (or `with` in
synchronous code): the model cannot be unloaded while any lease on it is held, and keep-alive starts counting
when the last one ends. Adapters (LoRA) do not load a model of their own: they attach to their base's batch
runner (see placement.py), so several fine-tunes of one base share its weights.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

from xuetu import models
from xuetu.errors import BadInput, Busy, Unavailable, XuetuError
from xuetu.models.ref import ModelRef
from xuetu.runtime import loading
from xuetu.runtime.placement import Placement, place
from xuetu.runtime.settings import RuntimeSettings, parse_duration

_DEFAULT = object()


@dataclass
class Loaded:
    key: tuple[str, str]  # (name of the model holding the weights, engine)
    ref: ModelRef  # that model
    engine_name: str
    runner: object
    encoder: object  # what tokenizes prompts: the engine, or the embedder
    size: int
    loaded_at: float = field(default_factory=time.time)
    last_used: float = field(default_factory=time.time)
    expires_at: float | None = None
    active: int = 0
    pinned: bool = False

    @property
    def name(self) -> str:
        return self.key[0]


class Lease:
    """A model held by one request. Use it as a context manager (`async with` or `with`), or call `release()`
    (idempotent) yourself; `share()` hands a second hold to whatever outlives the first (a streamed answer)."""

    def __init__(self, manager: "ModelManager", loaded: Loaded, ref: ModelRef, keep_alive, load_seconds: float,
                 adapter: str | None):
        self.manager, self.loaded, self.ref = manager, loaded, ref
        self.adapter = adapter
        """The adapter to apply per request on a shared base, or None."""
        self.keep_alive = keep_alive
        self.load_seconds = load_seconds
        self._released = False

    @property
    def runner(self):
        return self.loaded.runner

    @property
    def encoder(self):
        return self.loaded.encoder

    @property
    def encoder_template(self) -> str | None:
        """The model's chat template, where its engine has one (tool calling reads its dialect from it)."""
        template = getattr(self.loaded.encoder, "chat_template", None)
        return template if isinstance(template, str) else None

    @property
    def generates(self) -> bool:
        """False for an embedding model, which turns text into vectors and cannot answer."""
        return self.loaded.engine_name != "sentence-transformers"

    def share(self) -> "Lease":
        self.manager._hold(self.loaded)
        return Lease(self.manager, self.loaded, self.ref, self.keep_alive, self.load_seconds, self.adapter)

    def release(self) -> None:
        if not self._released:
            self._released = True
            self.manager._release(self.loaded, self.keep_alive)

    async def __aenter__(self) -> "Lease":
        return self

    async def __aexit__(self, *exc) -> None:
        self.release()

    def __enter__(self) -> "Lease":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


class ModelLoading(Busy):
    code = "model_loading"

    def __init__(self, name: str):
        super().__init__(f"model '{name}' is loading; retry shortly", None, retry_after=2)


class ModelManager:
    def __init__(self, settings: RuntimeSettings):
        self.settings = settings
        self.loaded: dict[tuple[str, str], Loaded] = {}
        self._loading: dict[tuple[str, str], asyncio.Future] = {}
        self._lock = asyncio.Lock()
        self._reaper: asyncio.Task | None = None

    # -- naming --------------------------------------------------------------------------------------
    @staticmethod
    def resolve(name: str) -> ModelRef:
        """The stored model `name` names; ModelNotFound (param "model") when there is none."""
        if not isinstance(name, str) or not name.strip():
            raise BadInput("model is required", param="model")
        try:
            return models.resolve(name)
        except XuetuError as e:
            e.param = e.param or "model"
            raise

    def placement(self, ref: ModelRef) -> Placement:
        """Where `ref` runs on this server (see runtime.placement)."""
        return place(ref, self.settings.engine, self.settings.quant)

    # -- leasing -------------------------------------------------------------------------------------
    def lease(self, name: str, keep_alive=_DEFAULT, wait: bool = True) -> contextlib.AbstractAsyncContextManager[Lease]:
        """`async with manager.lease(name) as lease:` holds the model for the block."""
        manager = self

        @contextlib.asynccontextmanager
        async def held():
            lease = await manager.acquire(name, keep_alive, wait)
            async with lease:
                yield lease

        return held()

    async def acquire(self, name: str, keep_alive=_DEFAULT, wait: bool = True) -> Lease:
        """A lease on `name`, loading it first if needed; with wait=False, ModelLoading instead of waiting."""
        ref = await asyncio.to_thread(self.resolve, name)  # an embedded model is stored on first use: not on the loop
        where = self.placement(ref)
        keep = self._keep_alive(keep_alive)
        started = time.perf_counter()
        loaded = await self._resident(where, wait)
        lease = Lease(self, loaded, ref, keep, time.perf_counter() - started, where.adapter)
        if where.adapter is not None:
            try:
                await asyncio.to_thread(loaded.runner.add_adapter, ref.name, str(ref.adapter_dir))
            except Exception as e:
                lease.release()
                raise Unavailable(f"loading adapter {ref.name} failed: {e}", code="load_failed") from e
        return lease

    def _keep_alive(self, keep_alive) -> float | None:
        if keep_alive in (_DEFAULT, None):
            return self.settings.keep_alive_seconds
        try:
            return parse_duration(keep_alive)
        except XuetuError as e:
            e.param = "keep_alive"
            raise

    async def _resident(self, where: Placement, wait: bool) -> Loaded:
        """The loaded copy for `where`, counted as in use; loads it (once, however many ask) when absent."""
        key = where.key
        while True:
            async with self._lock:
                loaded = self.loaded.get(key)
                if loaded is not None:
                    self._hold(loaded)
                    return loaded
                future = self._loading.get(key)
                if future is None:
                    future = asyncio.get_running_loop().create_future()
                    self._loading[key] = future
                    try:
                        await self._make_room(where)
                    except BaseException:
                        self._loading.pop(key, None)
                        raise
                    asyncio.get_running_loop().create_task(self._load(where, future))
            if not wait:
                raise ModelLoading(where.holder.name)
            await asyncio.shield(future)

    def _hold(self, loaded: Loaded) -> None:
        loaded.active += 1
        loaded.last_used = time.time()

    def _release(self, loaded: Loaded, keep_alive: float | None) -> None:
        loaded.active -= 1
        loaded.last_used = time.time()
        if not loaded.pinned:
            loaded.expires_at = None if keep_alive is None else time.time() + keep_alive
        if loaded.active == 0 and loaded.expires_at is not None and keep_alive == 0:
            asyncio.get_running_loop().create_task(self.unload(loaded.name, engine=loaded.engine_name))

    # -- loading and unloading ------------------------------------------------------------------------
    async def _make_room(self, where: Placement) -> None:
        limits = self.settings
        need = loading.estimate_bytes(where.holder, where.engine, limits.quant)
        if need > limits.max_memory:
            raise Unavailable(f"{where.holder.name} needs about {need / 1e9:.1f} GB but the server may use "
                              f"{limits.max_memory / 1e9:.1f} GB (--max-memory)", code="insufficient_memory")
        while True:
            used = sum(m.size for m in self.loaded.values())
            count = len(self.loaded) + len(self._loading)  # the one being placed is in _loading already
            if count <= limits.max_loaded and used + need <= limits.max_memory:
                return
            idle = [m for m in self.loaded.values() if m.active == 0 and not m.pinned]
            if not idle:
                raise Busy("all model slots are busy (--max-loaded / --max-memory); retry shortly", None,
                           retry_after=5)
            victim = min(idle, key=lambda m: m.last_used)
            self.loaded.pop(victim.key)
            await asyncio.to_thread(victim.runner.close)

    async def _load(self, where: Placement, future: asyncio.Future) -> None:
        key, limits = where.key, self.settings
        try:
            used = sum(m.size for m in self.loaded.values())
            running = await asyncio.to_thread(loading.load, where, limits.quant, limits.max_batch, limits.max_queue,
                                              limits.max_memory - used)
            loaded = Loaded(key=key, ref=where.holder, engine_name=key[1], runner=running.runner,
                            encoder=running.encoder, size=running.size,
                            pinned=where.holder.name in self._pinned_names())
            async with self._lock:
                self.loaded[key] = loaded
                self._loading.pop(key, None)
            future.set_result(loaded)
        except BaseException as e:
            async with self._lock:
                self._loading.pop(key, None)
            future.set_exception(_load_failure(where.holder.name, e))
            future.exception()  # mark retrieved: no "never retrieved" warning when nobody waits

    def _pinned_names(self) -> set[str]:
        names = set()
        for n in self.settings.models:
            try:
                names.add(models.resolve(n).name)
            except XuetuError:
                pass
        return names

    async def unload(self, name: str, engine: str | None = None) -> bool:
        async with self._lock:
            victims = [m for m in self.loaded.values() if m.name == name and (engine is None or m.engine_name == engine)]
            victims = [m for m in victims if m.active == 0]
            for m in victims:
                self.loaded.pop(m.key)
        for m in victims:
            await asyncio.to_thread(m.runner.close)
        return bool(victims)

    async def preload(self) -> None:
        for name in self.settings.models:
            lease = await self.acquire(name, keep_alive=-1)
            lease.loaded.pinned = True
            lease.loaded.expires_at = None
            lease.release()

    # -- housekeeping ---------------------------------------------------------------------------------
    def start(self) -> None:
        self._reaper = asyncio.get_running_loop().create_task(self._reap())

    async def _reap(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            now = time.time()
            for m in list(self.loaded.values()):
                if m.active == 0 and not m.pinned and m.expires_at is not None and now >= m.expires_at:
                    await self.unload(m.name, engine=m.engine_name)

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        for m in list(self.loaded.values()):
            await asyncio.to_thread(m.runner.close)
        self.loaded.clear()

    def queue_depth(self) -> int:
        return sum(getattr(m.runner, "depth", 0) for m in self.loaded.values())

    def kv_cache(self) -> dict:
        """KV cache figures of the runners that preallocate one (llama.cpp slots, static batching), summed over
        loaded models."""
        total: dict = {}
        for m in list(self.loaded.values()):
            if hasattr(m.runner, "kv_bytes"):
                for key, value in m.runner.info().items():
                    total[key] = total.get(key, 0) + value
        return total

    def ps(self) -> list[dict]:
        return [{"name": m.name, "engine": m.engine_name, "size": m.size, "active": m.active,
                 "queue": getattr(m.runner, "depth", 0), "expires_at": m.expires_at, "pinned": m.pinned,
                 "adapters": sorted(getattr(m.runner, "adapters", {})), "loaded_at": m.loaded_at,
                 "peak_batch": getattr(m.runner, "peak_batch", 1), "quant": getattr(m.encoder, "quant", None),
                 **({"kv_cache": m.runner.info()} if hasattr(m.runner, "kv_bytes") else {})}
                for m in self.loaded.values()]


def _load_failure(name: str, e: BaseException) -> BaseException:
    """What a failed load tells every request that waited for it: a domain error stays what it is (a model
    that is not pulled stays not found); anything else is the model being unavailable, not a crash."""
    if not isinstance(e, Exception) or (isinstance(e, XuetuError) and type(e) is not XuetuError):
        return e
    if isinstance(e, XuetuError):
        return Unavailable(f"loading {name} failed: {e.message}", e.hint, code="load_failed")
    return Unavailable(f"loading {name} failed: {type(e).__name__}: {e}", code="load_failed")
