"""The safety guards on the serving path, for both API families and the web app (which uses the same routes).

`GuardMiddleware` notes each request's API key and guard in a context variable and applies the key's rate
limit (a token bucket: 429 with Retry-After) and daily token quota (429, code quota_exceeded). Then
`generation.generate` calls `check_input` on the prompt and `guard_stream` around the answer, and
`rag.augment` calls `check_documents` on the retrieved chunks. A block ends with `finish_reason:
"content_filter"` and a short refusal in the user's language, in either API's own shape; every event
counts in /metrics (xuetu_guard_events_total) and goes to the audit log with personal data masked.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextvars import ContextVar
from dataclasses import dataclass, field

from xuetu.engines.base import Chunk
from xuetu.safety import audit
from xuetu.safety.policy import key_id
from xuetu.serve.errors import error_response

GENERATING = ("/v1/chat/completions", "/v1/completions", "/api/generate", "/api/chat", "/v1/embeddings",
              "/api/embed", "/api/embeddings")


@dataclass
class RequestGuard:
    guard: object
    key: str | None
    metrics: object
    audit_path: object
    request_id: str
    usage: object = None
    who: str = ""
    events: list = field(default_factory=list)
    """What fired on this request: [{"direction", "channel", "action", "categories"}]"""


current: ContextVar[RequestGuard | None] = ContextVar("xuetu_request_guard", default=None)


def record(rg: RequestGuard, verdict, direction: str, channel: str, snippet: str = "") -> None:
    if verdict.action == "pass":
        return
    event = {"direction": direction, "channel": channel, "action": verdict.action, "categories": verdict.categories}
    rg.events.append(event)
    for category in verdict.categories:
        rg.metrics.guard_events.labels(category, verdict.actions.get(category, verdict.action), direction).inc()
    audit.write(rg.audit_path, {"request": rg.request_id, "key": key_id(rg.key), **event,
                                "findings": [f.to_dict() for f in verdict.findings], "snippet": snippet})


def check_input(prompt):
    """(prompt to use, refusal text or None)."""
    rg = current.get()
    if rg is None or rg.guard is None:
        return prompt, None
    if isinstance(prompt, str):
        verdict = rg.guard.check(prompt, "user", rg.key)
        new = verdict.text if verdict.action == "mask" else prompt
        snippet = prompt
    else:
        verdict, new = rg.guard.check_messages(prompt, rg.key)
        snippet = next((m["content"] for m in reversed(prompt) if m.get("role") == "user"), "")
    record(rg, verdict, "input", "user", snippet)
    return (prompt, verdict.text) if verdict.blocked else (new, None)


def refusal_stream(text: str, prompt_tokens: int = 0) -> AsyncIterator[Chunk]:
    async def one():
        yield Chunk(text, prompt_tokens, 0, "content_filter")

    return one()


async def guard_stream(chunks: AsyncIterator[Chunk]) -> AsyncIterator[Chunk]:
    """The answer through the hold-back window; a flagged span ends it with finish_reason content_filter."""
    rg = current.get()
    if rg is None or rg.guard is None:
        async for chunk in chunks:
            yield chunk
        return
    sg = rg.guard.stream(rg.key)
    try:
        async for chunk in chunks:
            text = sg.feed(chunk.text)
            if chunk.finish_reason is not None and not sg.blocked:
                text += sg.close()
            if sg.blocked:
                record(rg, sg.verdict, "output", "output", sg.raw[-400:])
                note = ("\n\n" if sg.raw else "") + sg.verdict.text
                yield Chunk(text + note, chunk.prompt_tokens, chunk.completion_tokens, "content_filter")
                return
            if chunk.finish_reason is not None:
                masked = [f for f in sg.findings if f.category == "pii"]
                if masked:
                    from xuetu.safety.guard import Verdict

                    record(rg, Verdict("mask", masked, actions={"pii": "mask"}), "output", "output")
            if text or chunk.finish_reason is not None:
                yield Chunk(text, chunk.prompt_tokens, chunk.completion_tokens, chunk.finish_reason)
            if chunk.finish_reason is not None:
                return
    finally:
        await chunks.aclose()


def check_documents(results: list) -> list:
    """Retrieved chunks without those the policy blocks (indirect prompt injection and the like)."""
    rg = current.get()
    if rg is None or rg.guard is None:
        return results
    kept = []
    for r in results:
        verdict = rg.guard.check(r.text, "document", rg.key)
        record(rg, verdict, "retrieval", "document", r.text)
        if not verdict.blocked:
            kept.append(r)
    return kept


class _Bucket:
    def __init__(self, rate_per_s: float, burst: float):
        self.rate, self.burst, self.tokens, self.at = rate_per_s, burst, burst, time.monotonic()

    def take(self) -> float:
        """0 if a request may go now, else the seconds until one may."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class Usage:
    """Per key: a request bucket and today's tokens."""

    def __init__(self):
        self._lock = threading.Lock()
        self.buckets: dict[str, _Bucket] = {}
        self.tokens: dict[str, tuple[str, int]] = {}

    def wait_for(self, who: str, limits) -> float:
        if not limits.requests_per_minute:
            return 0.0
        with self._lock:
            bucket = self.buckets.get(who)
            if bucket is None or bucket.rate != limits.requests_per_minute / 60:
                bucket = self.buckets[who] = _Bucket(limits.requests_per_minute / 60, max(1, limits.burst))
            return bucket.take()

    def used_today(self, who: str) -> int:
        day, n = self.tokens.get(who, ("", 0))
        return n if day == time.strftime("%Y-%m-%d") else 0

    def add_tokens(self, who: str, n: int) -> None:
        with self._lock:
            self.tokens[who] = (time.strftime("%Y-%m-%d"), self.used_today(who) + n)


def who(key: str | None, scope) -> str:
    return key_id(key) or "ip:" + (scope.get("client") or ("local", 0))[0]


class GuardMiddleware:
    def __init__(self, app, state):
        self.app, self.state = app, state

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        header = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
        key = header.partition(" ")[2].strip() or None
        guard, policy, whom = self.state.guard, self.state.policy, who(key, scope)
        if scope["method"] == "POST" and scope["path"] in GENERATING:
            limits = policy.limits_for(key)
            wait = self.state.usage.wait_for(whom, limits)
            if wait > 0:
                return await error_response(scope["path"], 429, "too many requests for this API key: the rate limit "
                                            f"is {limits.requests_per_minute:g} per minute", type="rate_limit_error",
                                            code="rate_limited", headers={"Retry-After": str(max(1, round(wait)))}
                                            )(scope, receive, send)
            if limits.tokens_per_day and self.state.usage.used_today(whom) >= limits.tokens_per_day:
                return await error_response(scope["path"], 429, f"this API key has used its {limits.tokens_per_day} "
                                            "tokens for today", type="rate_limit_error", code="quota_exceeded",
                                            headers={"Retry-After": "3600"})(scope, receive, send)
        token = current.set(RequestGuard(guard, key, self.state.metrics, self.state.audit_path, uuid.uuid4().hex[:12],
                                         self.state.usage, whom))
        try:
            await self.app(scope, receive, send)
        finally:
            current.reset(token)


def count_tokens(n: int) -> None:
    """Charge a finished generation to its key's daily quota."""
    rg = current.get()
    if rg is not None and rg.usage is not None:
        rg.usage.add_tokens(rg.who, n)
