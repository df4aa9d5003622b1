"""Thread pools, so that work whose cost a client controls never queues ahead of generation.

- the loop's default pool (`asyncio.to_thread`): what every generation needs, and quick store reads:
  encoding prompts, loading models, listing the store;
- `guard`: the safety checks of prompts and retrieved documents;
- `heavy`: knowledge-base ingest and search, uploads, pulls, creating and copying models, dataset checks.

Each pool is small and bounded: a flood of one kind waits in its own queue. The guard inspects long texts in
chunks (xuetu.safety.guard.CHUNK), so no single call holds the interpreter for long and the event loop keeps
answering (/health, streams) while a guard or an ingest runs.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
from concurrent.futures import ThreadPoolExecutor

_CPUS = os.cpu_count() or 2
POOLS = {"guard": ThreadPoolExecutor(max_workers=max(2, _CPUS // 2), thread_name_prefix="xuetu-guard"),
         "heavy": ThreadPoolExecutor(max_workers=max(2, _CPUS // 2), thread_name_prefix="xuetu-heavy")}


async def run(pool: str, fn, /, *args, **kwargs):
    """fn(*args, **kwargs) in the named pool, with the caller's context variables (the request's guard)."""
    ctx = contextvars.copy_context()
    call = functools.partial(ctx.run, fn, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(POOLS[pool], call)
