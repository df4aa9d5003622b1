"""The safety guards on the serving path, for both API families and the web app (which uses the same routes).

`GuardMiddleware` notes each request's authenticated API key and guard in the request's state (`of(request)`
gives it to a route, which passes it on explicitly) and applies the
key's (or, without keys, the client address's) rate limit (a token bucket: 429 with Retry-After) and daily token
quota (429, code quota_exceeded). Then `generation.generate` calls `check_input` on every turn of the prompt,
`reserve_tokens` once it knows the prompt's length, and `guard_stream` around the answer, and
`rag.augment` calls `check_documents` on the retrieved chunks. A block ends with `finish_reason:
"content_filter"` and a short refusal in the user's language, in either API's own shape; every event
counts in /metrics (xuetu_guard_events_total) and goes to the audit log with personal data masked.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from xuetu.engines.base import Chunk
from xuetu.safety import audit
from xuetu.safety.policy import key_id
from xuetu.errors import RateLimited
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
    limits: object = None
    """The caller's rate limit and quota (xuetu.safety.policy.Limits)."""
    events: list = field(default_factory=list)
    """What fired on this request: [{"direction", "channel", "action", "categories"}]"""


STATE_KEY = "xuetu_request_guard"


def of(request) -> RequestGuard | None:
    """The guard GuardMiddleware noted for this request (None when the app runs without it)."""
    return request.scope.get("state", {}).get(STATE_KEY)


def record(rg: RequestGuard, verdict, direction: str, channel: str, snippet: str = "") -> None:
    if verdict.action == "pass":
        return
    event = {"direction": direction, "channel": channel, "action": verdict.action, "categories": verdict.categories}
    rg.events.append(event)
    for category in verdict.categories:
        rg.metrics.guard_events.labels(category, verdict.actions.get(category, verdict.action), direction).inc()
    audit.write(rg.audit_path, {"request": rg.request_id, "key": key_id(rg.key), **event,
                                "findings": [f.to_dict() for f in verdict.findings], "snippet": snippet})


def check_input(rg: RequestGuard | None, prompt, trusted=()):
    """(prompt to use, refusal text or None). Every turn is checked, whatever its role; `trusted` are the texts
    the server itself put in (the model's system prompt, the knowledge-base instructions)."""
    if rg is None or rg.guard is None:
        return prompt, None
    if isinstance(prompt, str):
        verdict = rg.guard.check(prompt, "user", rg.key)
        new = verdict.text if verdict.action == "mask" else prompt
        snippet = prompt
    else:
        verdict, new = rg.guard.check_messages(prompt, rg.key, trusted)
        texts = [m["content"] for m in reversed(prompt) if isinstance(m.get("content"), str)]
        snippet = next((t for t in texts if any(f.match and f.match in t for f in verdict.findings)),
                       texts[0] if texts else "")
    record(rg, verdict, "input", "user", snippet)
    return (prompt, verdict.text) if verdict.blocked else (new, None)


def refusal_stream(text: str, prompt_tokens: int = 0) -> AsyncIterator[Chunk]:
    async def one():
        yield Chunk(text, prompt_tokens, 0, "content_filter")

    return one()


async def guard_stream(rg: RequestGuard | None, chunks: AsyncIterator[Chunk]) -> AsyncIterator[Chunk]:
    """The answer through the hold-back window; a flagged span ends it with finish_reason content_filter."""
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
                # calls a remote model made arrive whole on the last chunk (a local model's are split off later)
                yield Chunk(text, chunk.prompt_tokens, chunk.completion_tokens, chunk.finish_reason, chunk.tool_calls)
            if chunk.finish_reason is not None:
                return
    finally:
        await chunks.aclose()


def check_documents(rg: RequestGuard | None, results: list) -> list:
    """Retrieved chunks without those the policy blocks (indirect prompt injection and the like)."""
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
    """Per caller (an authenticated API key, else the client's address): a request bucket and today's tokens.

    Tokens are reserved before a generation (its prompt and the most it may generate) and settled after it (the
    unused part refunded), under one lock, so concurrent requests cannot overshoot a quota together. Each table
    keeps at most `max_callers` entries, the least recently seen forgotten first, so a flood of addresses
    cannot grow it without bound (a forgotten caller starts afresh).
    """

    def __init__(self, max_callers: int = 10_000):
        self._lock = threading.Lock()
        self.max_callers = max_callers
        self.buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self.tokens: OrderedDict[str, tuple[str, int]] = OrderedDict()

    def _keep(self, table: OrderedDict, who: str, value) -> None:
        table[who] = value
        table.move_to_end(who)
        while len(table) > self.max_callers:
            table.popitem(last=False)

    def wait_for(self, who: str, limits) -> float:
        if not limits.requests_per_minute:
            return 0.0
        with self._lock:
            bucket = self.buckets.get(who)
            if bucket is None or bucket.rate != limits.requests_per_minute / 60:
                bucket = _Bucket(limits.requests_per_minute / 60, max(1, limits.burst))
            self._keep(self.buckets, who, bucket)
            return bucket.take()

    def used_today(self, who: str) -> int:
        day, n = self.tokens.get(who, ("", 0))
        return n if day == _today() else 0

    def reserve(self, who: str, want: int, least: int, quota: int) -> int:
        """Reserve up to `want` of today's `quota` tokens, at least `least`; how many were reserved (0: none,
        fewer than `least` were left)."""
        with self._lock:
            used = self.used_today(who)
            got = min(want, quota - used)
            if got < least:
                return 0
            self._keep(self.tokens, who, (_today(), used + got))
            return got

    def settle(self, who: str, day: str, reserved: int, spent: int) -> None:
        """Charge what a generation spent instead of what it reserved (a reservation of an earlier day is dropped)."""
        with self._lock:
            if who in self.tokens and self.tokens[who][0] == day == _today():
                self.tokens[who] = (day, max(0, self.tokens[who][1] - reserved + spent))


def _today() -> str:
    return time.strftime("%Y-%m-%d")


def who(key: str | None, scope) -> str:
    return key_id(key) or "ip:" + (scope.get("client") or ("local", 0))[0]


class GuardMiddleware:
    """Notes the request's key, guard and limits, and answers 429 over a rate limit or a spent quota.

    Only a key the server authenticates (`--api-key`) selects a per-key policy: on a keyless server anyone could
    claim any bearer value, so there the value is ignored and limits count per client address.
    """

    def __init__(self, app, state):
        self.app, self.state = app, state
        self.keys = set(state.args.api_keys)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        header = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
        key = header.partition(" ")[2].strip() or None
        key = key if key in self.keys else None
        guard, policy, whom = self.state.guard, self.state.policy, who(key, scope)
        limits = policy.limits_for(key)
        if scope["method"] == "POST" and scope["path"] in GENERATING:
            wait = self.state.usage.wait_for(whom, limits)
            if wait > 0:
                return await error_response(scope["path"], 429, "too many requests for this API key: the rate limit "
                                            f"is {limits.requests_per_minute:g} per minute", type="rate_limit_error",
                                            code="rate_limited", headers={"Retry-After": str(max(1, round(wait)))}
                                            )(scope, receive, send)
            if limits.tokens_per_day and self.state.usage.used_today(whom) >= limits.tokens_per_day:
                return await error_response(scope["path"], 429, f"{_whose(key)} has used its {limits.tokens_per_day} "
                                            "tokens for today", type="rate_limit_error", code="quota_exceeded",
                                            headers={"Retry-After": "3600"})(scope, receive, send)
        scope.setdefault("state", {})[STATE_KEY] = RequestGuard(guard, key, self.state.metrics, self.state.audit_path,
                                                                uuid.uuid4().hex[:12], self.state.usage, whom, limits)
        await self.app(scope, receive, send)


def _whose(key: str | None) -> str:
    return "this API key" if key else "this client address"


class QuotaExceeded(RateLimited):
    """The caller's daily token quota is spent: 429, code quota_exceeded, retry in an hour."""

    code = "quota_exceeded"

    def __init__(self, message: str):
        super().__init__(message, None, retry_after=3600)


@dataclass
class Reservation:
    """Tokens held from a daily quota for one generation; `settle` charges what it really spent."""

    usage: object = None
    who: str = ""
    day: str = ""
    tokens: int = 0

    def settle(self, spent: int) -> None:
        if self.usage is not None:
            self.usage.settle(self.who, self.day, self.tokens, spent)
            self.usage = None  # once


def reserve_tokens(rg: RequestGuard | None, prompt_tokens: int, options) -> Reservation:
    """Hold the prompt and the most the answer may take from the caller's daily quota, before generating.

    When less is left than max_tokens asks for, the answer is capped at what is left (it ends with "length");
    when not even the prompt and one token fit, 429 quota_exceeded.
    """
    quota = rg.limits.tokens_per_day if rg is not None and rg.limits is not None and rg.usage is not None else 0
    if not quota:
        return Reservation()
    got = rg.usage.reserve(rg.who, prompt_tokens + options.max_tokens, prompt_tokens + 1, quota)
    if not got:
        left = max(0, quota - rg.usage.used_today(rg.who))
        raise QuotaExceeded(f"{_whose(rg.key)} has {left} of its {quota} tokens for today left, and this request "
                            f"needs {prompt_tokens + 1} or more")
    options.max_tokens = got - prompt_tokens
    return Reservation(rg.usage, rg.who, _today(), got)
