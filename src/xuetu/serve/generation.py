"""What both API families do to generate: encode the prompt, check limits, queue the request,
stream its chunks and record timings and metrics. Routers only translate shapes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from xuetu.engines.base import Chunk, GenerateOptions
from xuetu.errors import ContextTooLong, XuetuError
from xuetu.safety.guard import TextTooLong
from xuetu.serve.errors import ApiError
from xuetu.serve.manager import Lease
from xuetu.serve.runner import GenRequest, QueueFull, stream


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


def to_api_error(e: Exception) -> ApiError:
    if isinstance(e, ApiError):
        return e
    if isinstance(e, ContextTooLong):
        return ApiError(400, e.message, code="context_length_exceeded", param="messages")
    if isinstance(e, QueueFull):
        return ApiError(429, e.message, type="rate_limit_error", code="queue_full", headers={"Retry-After": "1"})
    if isinstance(e, TextTooLong):
        return ApiError(413, e.message, code="request_too_large")
    if isinstance(e, XuetuError):
        return ApiError(400, e.message)
    return ApiError(500, f"generation failed: {type(e).__name__}: {e}", type="server_error")


CHARS_PER_TOKEN = 32
"""More characters per token than any tokenizer reaches on text: a prompt longer than this many characters per
token of context cannot fit, and is refused without being tokenized."""


def _chars(prompt) -> int:
    if isinstance(prompt, str):
        return len(prompt)
    return sum(len(m.get("content") or "") if isinstance(m.get("content"), str) else len(str(m.get("content")))
               for m in prompt)


def encode_within_context(lease: Lease, prompt) -> list[int]:
    """The prompt's token ids, or ContextTooLong when it cannot fit the model's context window."""
    limit = getattr(lease.encoder, "context_length", None)
    hint = "Shorten the conversation or the prompt."
    if limit and _chars(prompt) > limit * CHARS_PER_TOKEN:
        raise ContextTooLong(f"the prompt is {_chars(prompt)} characters, far more than the {limit} tokens "
                             f"{lease.ref.name} holds", hint)
    ids = lease.encoder.encode(prompt)
    if limit and len(ids) >= limit:
        raise ContextTooLong(f"the prompt is {len(ids)} tokens but {lease.ref.name} holds {limit}", hint)
    return ids


def check_prompt_kind(lease: Lease, prompt) -> None:
    if lease.loaded.engine_name == "sentence-transformers":
        raise ApiError(400, f"{lease.ref.name} is an embedding model; it cannot generate text", param="model")


async def generate(app_state, lease: Lease, prompt, options: GenerateOptions, started: float
                   ) -> tuple[AsyncIterator[Chunk], Timing]:
    """Start a generation; errors that can be known before the first token raise ApiError here.

    The lease is released when the returned iterator ends, fails or is closed.
    """
    from xuetu.serve import guarding, pools

    from xuetu.rag.answer import INSTRUCTIONS

    timing = Timing(start=started, load=lease.load_seconds)
    reservation = guarding.Reservation()
    try:
        check_prompt_kind(lease, prompt)
        # What the model cannot hold is refused before the guard reads it: the guard's work is then bounded by
        # the context window, not by the request's size.
        ids = await asyncio.to_thread(encode_within_context, lease, prompt)
        trusted = (lease.ref.system, *INSTRUCTIONS.values())  # the operator's and the server's own words
        checked, refused = await pools.run("guard", guarding.check_input, prompt, trusted)
        if refused is not None:  # blocked before the model sees it: the answer is the refusal
            lease.release()
            timing.first_token = timing.end = time.perf_counter()
            timing.finish_reason = "content_filter"
            return guarding.refusal_stream(refused), timing
        if checked != prompt:  # personal data masked
            ids = await asyncio.to_thread(lease.encoder.encode, checked)
        if options.max_tokens > app_state.args.max_tokens:
            options.max_tokens = app_state.args.max_tokens
        timing.prompt_tokens = len(ids)
        reservation = guarding.reserve_tokens(len(ids), options)  # may cap max_tokens at what the quota has left
        request = GenRequest(ids, options, adapter=lease.adapter)
        chunks = stream(lease.runner, request)
        first = await chunks.__anext__()  # queue-full, context and format errors surface here, before any byte
        timing.first_token = time.perf_counter()
    except BaseException as e:
        lease.release()
        reservation.settle(0)
        raise to_api_error(e) if isinstance(e, Exception) else e
    rest = _rest(app_state, lease, chunks, first, timing, reservation)
    return _timed(guarding.guard_stream(rest), timing), timing


async def _timed(chunks: AsyncIterator[Chunk], timing: Timing) -> AsyncIterator[Chunk]:
    """The (guarded) answer; a guard's content_filter ending is the finish reason the reply reports."""
    try:
        async for chunk in chunks:
            if chunk.finish_reason is not None:
                timing.finish_reason = chunk.finish_reason
            yield chunk
    finally:
        await chunks.aclose()


async def _rest(app_state, lease: Lease, chunks, first: Chunk, timing: Timing, reservation) -> AsyncIterator[Chunk]:
    try:
        chunk = first
        while True:
            timing.completion_tokens = chunk.completion_tokens
            if chunk.finish_reason is not None:
                timing.finish_reason = chunk.finish_reason
                timing.end = time.perf_counter()
            yield chunk
            if chunk.finish_reason is not None:
                break
            chunk = await chunks.__anext__()
    finally:
        await chunks.aclose()  # cancels the request if the client went away
        timing.end = timing.end or time.perf_counter()
        lease.release()
        reservation.settle(timing.prompt_tokens + timing.completion_tokens)
        app_state.metrics.observe_generation(lease.ref.name, timing.prompt_tokens, timing.completion_tokens,
                                             (timing.first_token - timing.start) if timing.first_token else None,
                                             timing.eval)


async def collect(chunks: AsyncIterator[Chunk]) -> str:
    return "".join([c.text async for c in chunks])
