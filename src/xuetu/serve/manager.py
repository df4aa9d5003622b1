"""The model manager: which models are resident, loading them on first use and unloading them
when idle past their keep-alive, within a cap on count and on memory.

Adapters (LoRA) do not load a model of their own: they attach to their base's batch runner, so
several fine-tunes of one base share its weights.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from xuetu import engines, models
from xuetu.errors import ModelNotFound, ModelNotPulled, XuetuError
from xuetu.models.ref import ModelRef
from xuetu.serve.args import ServeArgs, parse_duration
from xuetu.serve.errors import ApiError, model_not_found

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
    """A model in use by one request; `release()` (idempotent) lets keep-alive run again."""

    def __init__(self, manager: "ModelManager", loaded: Loaded, ref: ModelRef, keep_alive, load_seconds: float):
        self.manager, self.loaded, self.ref = manager, loaded, ref
        self.adapter = ref.name if ref.adapter_dir is not None else None
        self.keep_alive = keep_alive
        self.load_seconds = load_seconds
        self._released = False

    @property
    def runner(self):
        return self.loaded.runner

    @property
    def encoder(self):
        return self.loaded.encoder

    def release(self) -> None:
        if not self._released:
            self._released = True
            self.manager._release(self.loaded, self.keep_alive)


class ModelLoading(ApiError):
    def __init__(self, name: str):
        super().__init__(503, f"model '{name}' is loading; retry shortly", type="server_error", code="model_loading",
                         headers={"Retry-After": "2"})


class ModelManager:
    def __init__(self, args: ServeArgs):
        self.args = args
        self.loaded: dict[tuple[str, str], Loaded] = {}
        self._loading: dict[tuple[str, str], asyncio.Future] = {}
        self._lock = asyncio.Lock()
        self._reaper: asyncio.Task | None = None

    # -- naming --------------------------------------------------------------------------------------
    @staticmethod
    def resolve(name: str) -> ModelRef:
        if not isinstance(name, str) or not name.strip():
            raise ApiError(400, "model is required", param="model")
        try:
            return models.resolve(name)
        except ModelNotFound as e:
            if isinstance(e, ModelNotPulled):
                raise ApiError(404, f"model '{name}' not found, try pulling it first (POST /api/pull, or "  # Ollama's words
                                    f"`xuetu pull {name}`)", code="model_not_found", param="model")
            raise model_not_found(name, e.hint.split("? ")[0] + "?" if e.hint and "Did you mean" in e.hint else None)
        except XuetuError as e:
            raise ApiError(400, e.message, param="model")

    def _placement(self, ref: ModelRef) -> tuple[tuple[str, str], ModelRef]:
        """(key, model holding the weights) for a request naming `ref`."""
        if ref.kind == "embedding":
            return (ref.name, "sentence-transformers"), ref
        if ref.adapter_dir is not None:
            if ref.prompt_learning:  # virtual tokens cannot share a LoRA batch: its own serial runner
                if self.args.quant == "int8":
                    raise ApiError(400, f"{ref.name} is a prompt- or prefix-tuned adapter, which this server "
                                        "cannot run on INT8 weights (--quant int8)", param="model")
                return (ref.name, "transformers-serial"), ref
            if self.args.quant == "int8":  # int8 rows take no LoRA at run time: the adapter is merged, its own model
                return (ref.name, "transformers"), ref
            base = self.resolve(ref.base)
            return (base.name, "transformers"), base
        try:
            engine = engines.choose(ref, self.args.engine, self.args.quant)
        except XuetuError as e:
            raise ApiError(400, e.message)
        if engine == "llama.cpp" and ref.gguf_file is None:
            engine = "transformers"  # an HF-only model under --engine llama.cpp
        return (ref.name, engine), ref

    # -- leasing -------------------------------------------------------------------------------------
    async def acquire(self, name: str, keep_alive=_DEFAULT, wait: bool = True) -> Lease:
        ref = await asyncio.to_thread(self.resolve, name)  # an embedded model is stored on first use: not on the loop
        key, holder = self._placement(ref)
        try:
            keep = self.args.keep_alive_seconds if keep_alive in (_DEFAULT, None) else parse_duration(keep_alive)
        except XuetuError as e:
            raise ApiError(400, e.message, param="keep_alive")
        started = time.perf_counter()
        while True:
            async with self._lock:
                loaded = self.loaded.get(key)
                if loaded is not None:
                    loaded.active += 1
                    loaded.last_used = time.time()
                    break
                future = self._loading.get(key)
                if future is None:
                    future = asyncio.get_running_loop().create_future()
                    self._loading[key] = future
                    try:
                        await self._make_room(holder, key[1])
                    except BaseException:
                        self._loading.pop(key, None)
                        raise
                    asyncio.get_running_loop().create_task(self._load(key, holder, future))
            if not wait:
                raise ModelLoading(ref.name)
            try:
                await asyncio.shield(future)
            except ApiError:
                raise
            except XuetuError as e:
                raise ApiError(500, f"loading {ref.name} failed: {e.message}", type="server_error")
        lease = Lease(self, loaded, ref, keep, time.perf_counter() - started)
        if ref.prompt_learning or holder is ref:
            lease.adapter = None  # built into its own engine
        if lease.adapter is not None:
            try:
                await asyncio.to_thread(loaded.runner.add_adapter, ref.name, str(ref.adapter_dir))
            except Exception as e:
                lease.release()
                raise ApiError(500, f"loading adapter {ref.name} failed: {e}", type="server_error")
        return lease

    def _release(self, loaded: Loaded, keep_alive: float | None) -> None:
        loaded.active -= 1
        loaded.last_used = time.time()
        if not loaded.pinned:
            loaded.expires_at = None if keep_alive is None else time.time() + keep_alive
        if loaded.active == 0 and loaded.expires_at is not None and keep_alive == 0:
            asyncio.get_running_loop().create_task(self.unload(loaded.name, engine=loaded.engine_name))

    # -- loading and unloading ------------------------------------------------------------------------
    def _estimate(self, holder: ModelRef, engine: str) -> int:
        from xuetu.models.facts import describe

        if engine == "llama.cpp" and holder.gguf_file is not None:
            return holder.gguf_file.stat().st_size
        params = describe(holder).parameters or 0
        per_weight = {"int8": 1, "fp16": 2, "bf16": 2}.get(self.args.quant, 4 if engine != "vllm" else 2)
        return params * per_weight

    async def _make_room(self, holder: ModelRef, engine: str) -> None:
        need = self._estimate(holder, engine)
        if need > self.args.max_memory:
            raise ApiError(503, f"{holder.name} needs about {need / 1e9:.1f} GB but the server may use "
                                f"{self.args.max_memory / 1e9:.1f} GB (--max-memory)", type="server_error",
                           code="insufficient_memory")
        while True:
            used = sum(m.size for m in self.loaded.values())
            count = len(self.loaded) + len(self._loading)  # the one being placed is in _loading already
            if count <= self.args.max_loaded and used + need <= self.args.max_memory:
                return
            idle = [m for m in self.loaded.values() if m.active == 0 and not m.pinned]
            if not idle:
                raise ApiError(503, "all model slots are busy (--max-loaded / --max-memory); retry shortly",
                               type="server_error", code="server_busy", headers={"Retry-After": "5"})
            victim = min(idle, key=lambda m: m.last_used)
            self.loaded.pop(victim.key)
            await asyncio.to_thread(victim.runner.close)

    async def _load(self, key: tuple[str, str], holder: ModelRef, future: asyncio.Future) -> None:
        try:
            runner, encoder, size = await asyncio.to_thread(self._build, holder, key[1])
            loaded = Loaded(key=key, ref=holder, engine_name=key[1], runner=runner, encoder=encoder, size=size,
                            pinned=holder.name in self._pinned_names())
            async with self._lock:
                self.loaded[key] = loaded
                self._loading.pop(key, None)
            future.set_result(loaded)
        except BaseException as e:
            async with self._lock:
                self._loading.pop(key, None)
            future.set_exception(e if isinstance(e, XuetuError | ApiError) else XuetuError(str(e)))
            future.exception()  # mark retrieved: no "never retrieved" warning when nobody waits

    def _pinned_names(self) -> set[str]:
        names = set()
        for n in self.args.models:
            try:
                names.add(models.resolve(n).name)
            except XuetuError:
                pass
        return names

    def _build(self, holder: ModelRef, engine: str):
        if engine == "sentence-transformers":
            from xuetu.engines.embedder import SentenceEmbedder

            emb = SentenceEmbedder(holder)
            size = sum(p.numel() * p.element_size() for p in emb.model.parameters())
            return emb, emb, size
        quant = self.args.quant if engine.startswith("transformers") else None
        eng = engines.load(holder, engine="transformers" if engine == "transformers-serial" else engine, quant=quant)
        if engine == "transformers":
            from xuetu.serve.batching import BatchRunner

            runner = BatchRunner(eng, max_batch=self.args.max_batch, max_queue=self.args.max_queue)
            size = eng.info()["weights_bytes"]  # measured, int8 rows and scales included
        elif engine == "vllm":
            from xuetu.serve.runner import ConcurrentRunner

            runner, size = ConcurrentRunner(eng, self.args.max_queue), self._estimate(holder, engine)
        else:
            from xuetu.serve.runner import SerialRunner

            runner, size = SerialRunner(eng, self.args.max_queue), self._estimate(holder, engine)
        return runner, eng, size

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
        for name in self.args.models:
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

    def ps(self) -> list[dict]:
        return [{"name": m.name, "engine": m.engine_name, "size": m.size, "active": m.active,
                 "queue": getattr(m.runner, "depth", 0), "expires_at": m.expires_at, "pinned": m.pinned,
                 "adapters": sorted(getattr(m.runner, "adapters", {})), "loaded_at": m.loaded_at,
                 "peak_batch": getattr(m.runner, "peak_batch", 1), "quant": getattr(m.encoder, "quant", None)}
                for m in self.loaded.values()]
