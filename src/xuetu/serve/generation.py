"""What both API families do to generate: encode the prompt, check limits and the guard, queue the request,
stream its chunks and record timings and metrics. Routers only translate shapes.

Everything a generation depends on is passed in: the lease on the model, the options (runtime.options), and
a `Serving` with the request's guard and the server's metrics. Errors known before the first token are raised
as domain errors, which the app maps to each API family's status and body (serve/errors.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from xuetu.engines.base import Chunk, GenerateOptions
from xuetu.errors import BadInput, ContextTooLong
from xuetu.runtime.manager import Lease
from xuetu.runtime.runner import GenRequest, stream
from xuetu.serve import guarding, pools, tooling
from xuetu.serve.guarding import RequestGuard
from xuetu.serve.metrics import Metrics
from xuetu.serve.tooling import ToolUse


@dataclass
class Serving:
    """What a generation needs from the server around it."""

    metrics: Metrics
    guard: RequestGuard | None = None
    """The request's guard, rate limit and quota (None: unguarded)."""


def serving(request) -> Serving:
    """The Serving for a FastAPI request: the app's metrics and the guard GuardMiddleware noted for it."""
    return Serving(request.app.state.metrics, guarding.of(request))


@dataclass
class Timing:
    """Durations in seconds, filled in as the generation runs."""

    start: float
    load: float = 0.0
    first_token: float | None = None
    end: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None

    @property
    def prompt_eval(self) -> float:
        return (self.first_token or self.end or self.start) - self.start - self.load

    @property
    def eval(self) -> float:
        return max((self.end or 0) - (self.first_token or self.end or 0), 0.0)

    @property
    def total(self) -> float:
        return (self.end or time.perf_counter()) - self.start


CHARS_PER_TOKEN = 32
"""More characters per token than any tokenizer reaches on text: a prompt longer than this many characters per
token of context cannot fit, and is refused without being tokenized."""


def _chars(prompt) -> int:
    if isinstance(prompt, str):
        return len(prompt)
    return sum(len(m.get("content") or "") if isinstance(m.get("content"), str) else len(str(m.get("content")))
               for m in prompt)


def encode_within_context(lease: Lease, prompt, tools: list[dict] | None = None) -> list[int]:
    """The prompt's token ids, or ContextTooLong when it cannot fit the model's context window."""
    limit = getattr(lease.encoder, "context_length", None)
    hint = "Shorten the conversation or the prompt."
    if limit and _chars(prompt) > limit * CHARS_PER_TOKEN:
        raise ContextTooLong(f"the prompt is {_chars(prompt)} characters, far more than the {limit} tokens "
                             f"{lease.ref.name} holds", hint)
    ids = lease.encoder.encode(prompt, tools=tools) if tools else lease.encoder.encode(prompt)
    if limit and len(ids) >= limit:
        raise ContextTooLong(f"the prompt is {len(ids)} tokens but {lease.ref.name} holds {limit}", hint)
    return ids


def check_generates(lease: Lease) -> None:
    if not lease.generates:
        raise BadInput(f"{lease.ref.name} is an embedding model; it cannot generate text",
                       "Use a chat model such as smollm2:135m, or POST /v1/embeddings.", param="model")


async def generate(lease: Lease, prompt, options: GenerateOptions, started: float, serving: Serving,
                   tools: ToolUse | None = None) -> tuple[AsyncIterator[Chunk], Timing]:
    """Start a generation; errors that can be known before the first token are raised here.

    The answer holds a lease of its own (`lease.share()`), released when the returned iterator ends, fails or
    is closed; the caller's lease is the caller's to end. With `tools`, the prompt offers them and the last
    chunk carries the calls the answer makes (serve/tooling.py).
    """
    from xuetu.rag.answer import INSTRUCTIONS

    timing = Timing(start=started, load=lease.load_seconds)
    held = lease.share()
    reservation = guarding.Reservation()
    try:
        check_generates(lease)
        # What the model cannot hold is refused before the guard reads it: the guard's work is then bounded by
        # the context window, not by the request's size.
        native = getattr(lease.encoder, "remote", False)  # a remote model: tools go upstream as given
        rendered, template_tools, dialect = tooling.prepared(prompt, tools, lease.encoder_template, native)
        tooling.constrain(options, tools, native)
        ids = await asyncio.to_thread(encode_within_context, lease, rendered, template_tools)
        trusted = (lease.ref.system, *INSTRUCTIONS.values())  # the operator's and the server's own words
        checked, refused = await pools.run("guard", guarding.check_input, serving.guard, prompt, trusted)
        if refused is not None:  # blocked before the model sees it: the answer is the refusal
            held.release()
            timing.first_token = timing.end = time.perf_counter()
            timing.finish_reason = "content_filter"
            return guarding.refusal_stream(refused), timing
        if checked != prompt:  # personal data masked
            rendered, template_tools, _ = tooling.prepared(checked, tools, lease.encoder_template, native)
            ids = await asyncio.to_thread(encode_within_context, lease, rendered, template_tools)
        timing.prompt_tokens = len(ids)
        # may cap max_tokens at what the quota has left
        reservation = guarding.reserve_tokens(serving.guard, len(ids), options)
        chunks = stream(lease.runner, GenRequest(ids, options, adapter=lease.adapter))
        first = await chunks.__anext__()  # queue-full, context and format errors surface here, before any byte
        timing.first_token = time.perf_counter()
    except BaseException:
        held.release()
        reservation.settle(0)
        raise
    rest = guarding.guard_stream(serving.guard, _rest(serving.metrics, held, chunks, first, timing, reservation))
    if dialect is not None and tools is not None and tools.active:
        rest = tooling.split_calls(rest, tools, dialect)
    elif native:
        rest = tooling.native_calls(rest)
    return _timed(rest, timing), timing


async def _timed(chunks: AsyncIterator[Chunk], timing: Timing) -> AsyncIterator[Chunk]:
    """The (guarded) answer; a guard's content_filter ending is the finish reason the reply reports."""
    try:
        async for chunk in chunks:
            if chunk.finish_reason is not None:
                timing.finish_reason = chunk.finish_reason
            yield chunk
    finally:
        await chunks.aclose()


async def _rest(metrics: Metrics, lease: Lease, chunks, first: Chunk, timing: Timing, reservation
                ) -> AsyncIterator[Chunk]:
    try:
        chunk = first
        while True:
            timing.completion_tokens = chunk.completion_tokens
            if chunk.finish_reason is not None:
                timing.finish_reason = chunk.finish_reason
                timing.end = time.perf_counter()
                timing.prompt_tokens = chunk.prompt_tokens or timing.prompt_tokens  # a provider's own count
            yield chunk
            if chunk.finish_reason is not None:
                break
            chunk = await chunks.__anext__()
    finally:
        await chunks.aclose()  # cancels the request if the client went away
        timing.end = timing.end or time.perf_counter()
        lease.release()
        reservation.settle(timing.prompt_tokens + timing.completion_tokens)
        metrics.observe_generation(lease.ref.name, timing.prompt_tokens, timing.completion_tokens,
                                   (timing.first_token - timing.start) if timing.first_token else None,
                                   timing.eval)


async def collect(chunks: AsyncIterator[Chunk]) -> str:
    return "".join([c.text async for c in chunks])


async def collect_calls(chunks: AsyncIterator[Chunk]) -> tuple[str, list | None]:
    """The whole answer's text and the tool calls it makes (None when it makes none)."""
    parts, calls = [], None
    async for c in chunks:
        parts.append(c.text)
        calls = c.tool_calls or calls
    return "".join(parts), calls
