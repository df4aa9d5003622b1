"""The remote engine: a model behind an OpenAI-compatible API (DeepSeek, DashScope, OpenAI, Ollama, vLLM, another
xuetu), streamed over httpx and spoken to as any other engine.

    engine = RemoteEngine(ref)                      # ref.manifest["remote"]: url, model, key_env
    for chunk in engine.generate(messages, opts):   # Chunk(text, prompt_tokens, completion_tokens, finish_reason)
        ...

Network behaviour, in one place:
- the key is read from the environment at use time (`Remote.key`) and sent only in the Authorization header;
- 429, 5xx and dropped connections before the answer's first byte are retried with backoff, honouring
  Retry-After; once an answer streams, a failure ends it with an error (a retry would repeat text);
- `cancelled` (an Event the serving layer sets when its client goes away) closes the upstream connection at once,
  so the provider stops generating, and billing, for nobody;
- usage comes from the provider's reply (`stream_options.include_usage`); until it arrives, counts are estimates.
Every failure is an UpstreamError (or Busy, for a provider that stays rate-limited) that names the provider.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Iterator

from xuetu.engines.base import Chunk, GenerateOptions, Messages
from xuetu.engines.messages import check_messages
from xuetu.errors import BadInput, Busy, UpstreamError
from xuetu.models.ref import ModelRef

log = logging.getLogger("xuetu.remote")
INSTALL_HINT = "The remote engine needs only httpx, which xuetu installs."
RETRY_STATUSES = {408, 409, 425, 429, 500, 502, 503, 504}
MAX_RETRY_AFTER = 30.0
"""Longest Retry-After honoured by waiting; a longer one is reported to the caller instead."""
BYTES_PER_TOKEN = 3
"""For estimates before the provider reports usage: about right for Chinese (3 bytes, one token a character),
generous for English."""


def is_available() -> bool:
    return True


def estimate_tokens(text: str) -> int:
    return max(1, len(text.encode("utf-8")) // BYTES_PER_TOKEN)


class RemotePrompt:
    """What the serving layer's encode step returns for a remote model: the request as it goes upstream.

    Its len() is the estimated prompt tokens, so context and quota checks work as for token ids."""

    def __init__(self, messages: Messages | str, tools: dict | None = None):
        self.messages = messages
        self.tools = tools or {}

    def __len__(self) -> int:
        if isinstance(self.messages, str):
            return estimate_tokens(self.messages)
        return sum(4 + estimate_tokens(json.dumps(m, ensure_ascii=False)) for m in self.messages) + \
            (estimate_tokens(json.dumps(self.tools, ensure_ascii=False)) if self.tools else 0)


def wire_messages(messages: Messages) -> list[dict]:
    """Messages in OpenAI's wire shape: tool-call arguments as JSON strings, every call and result with an id."""
    out, ids = [], []
    for m in check_messages(messages):
        m = {k: v for k, v in m.items() if k in ("role", "content", "name", "tool_calls", "tool_call_id")}
        if m.get("tool_calls"):
            calls = []
            for i, c in enumerate(m["tool_calls"]):
                fn = dict(c.get("function") or {})
                if not isinstance(fn.get("arguments"), str):
                    fn["arguments"] = json.dumps(fn.get("arguments") or {}, ensure_ascii=False)
                call_id = c.get("id") or f"call_{len(ids)}_{i}"
                ids.append(call_id)
                calls.append({"id": call_id, "type": "function", "function": fn})
            m["tool_calls"] = calls
        elif m["role"] == "tool" and not m.get("tool_call_id") and ids:
            m["tool_call_id"] = ids.pop(0)  # Ollama's shape answers calls in order, without ids
        out.append(m)
    return out


def _response_format(fmt) -> dict | None:
    if fmt is None:
        return None
    if fmt == "json":
        return {"type": "json_object"}
    return {"type": "json_schema", "json_schema": {"name": "answer", "schema": fmt, "strict": False}}


class _Calls:
    """Tool calls as a stream delivers them: pieces by index, arguments as JSON text in fragments."""

    def __init__(self):
        self.parts: dict[int, dict] = {}

    def push(self, deltas) -> None:
        for d in deltas or []:
            part = self.parts.setdefault(int(d.get("index", len(self.parts))), {"id": "", "name": "", "args": ""})
            fn = d.get("function") or {}
            part["id"] = d.get("id") or part["id"]
            part["name"] += fn.get("name") or ""
            args = fn.get("arguments")
            part["args"] += args if isinstance(args, str) else json.dumps(args) if args else ""

    def calls(self) -> list[dict] | None:
        """[{"id", "name", "arguments": dict}] (the serving layer makes them ToolCalls: serve/tooling.py)."""
        out = []
        for _, p in sorted(self.parts.items()):
            try:
                args = json.loads(p["args"]) if p["args"].strip() else {}
            except ValueError:
                log.info("tool call %s: arguments are not JSON: %.200s", p["name"], p["args"])
                args = {}
            out.append({"id": p["id"], "name": p["name"], "arguments": args if isinstance(args, dict) else
                        {"value": args}})
        return out or None


class RemoteClient:
    """The HTTP side of a remote model, shared by the chat engine and the embedder: the key in the header, the
    timeouts, retries with backoff on 429 and 5xx (honouring Retry-After), and one clear error per failure."""

    def __init__(self, spec, key: str | None = None):
        """`key` given here is used as it is (a --teacher-key); otherwise it is read from the spec's variable."""
        import httpx

        self.spec = spec
        key = key or spec.key()  # a missing key is an error now, not at the first request
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        timeout = httpx.Timeout(spec.timeout, connect=min(10.0, spec.timeout))
        self.http = httpx.Client(base_url=spec.url + "/", headers=headers, timeout=timeout,
                                           limits=httpx.Limits(max_connections=256, max_keepalive_connections=32))

    def failure(self, status: int, text: str) -> Exception:
        label, detail = self.spec.label, _detail(text)
        if status in (401, 403):
            where = f"the key in {self.spec.key_env}" if self.spec.key_env else "the request (no key is set)"
            return UpstreamError(f"{label} refused {where} ({status}: {detail})",
                                 "Check the key, or set the right variable with `xuetu create ... --key-env NAME`.")
        if status == 404:
            return UpstreamError(f"{label} has no model {self.spec.model!r} or no such path ({status}: {detail})",
                                 f"Check --api-model and that the URL ends in /v1 ({self.spec.url}).")
        if status in (400, 413, 422):
            return BadInput(f"{label} rejected the request ({status}): {detail}")
        return UpstreamError(f"{label} failed ({status}: {detail})", "Try again later; check the provider's status.")

    def post(self, path: str, body: dict, stream: bool = False, cancelled: threading.Event | None = None):
        """The response (streaming or read), after retries; raises a clear error when the provider cannot answer."""
        import httpx

        delay = 0.5
        for attempt in range(self.spec.retries + 1):
            last = attempt == self.spec.retries
            try:
                response = self.http.send(self.http.build_request("POST", path, json=body), stream=stream)
            except (httpx.TimeoutException, httpx.TransportError) as e:
                if last or (cancelled is not None and cancelled.is_set()):
                    if isinstance(e, httpx.ReadTimeout):
                        raise UpstreamError(f"{self.spec.label} did not answer within {self.spec.timeout:g} s",
                                            "Try again later, or allow more time with `xuetu create ... "
                                            "--timeout SECONDS`.") from None
                    raise UpstreamError(f"cannot reach {self.spec.label} at {self.spec.url} "
                                        f"({type(e).__name__}: {str(e)[:120] or 'no detail'})",
                                        "Check the URL, the network, and that the provider is up.") from None
                wait = delay
            else:
                if response.status_code < 300:
                    return response
                text = response.read().decode("utf-8", "replace")
                response.close()
                if response.status_code == 400 and "stream_options" in text and "stream_options" in body:
                    body = {k: v for k, v in body.items() if k != "stream_options"}  # an older server
                    continue
                if response.status_code not in RETRY_STATUSES:
                    raise self.failure(response.status_code, text)
                wait = _retry_after(response.headers.get("retry-after"), delay)
                if last or wait > MAX_RETRY_AFTER:
                    if response.status_code == 429:
                        raise Busy(f"{self.spec.label} is rate-limiting requests ({_detail(text)})",
                                   "Retry later, or raise the limits of your account with the provider.",
                                   retry_after=max(wait, 1))
                    raise self.failure(response.status_code, text)
            log.info("%s: retry %d in %.1fs", self.spec.label, attempt + 1, wait)
            if cancelled is not None and cancelled.wait(wait):
                raise UpstreamError("cancelled", code="cancelled")
            if cancelled is None:
                time.sleep(wait)
            delay = min(delay * 2, 8.0)
        raise UpstreamError(f"{self.spec.label} did not answer")  # not reached: the last attempt raises

    def get(self, path: str):
        """A GET (a model listing), with the same errors as post."""
        import httpx

        try:
            response = self.http.get(path)
        except (httpx.TimeoutException, httpx.TransportError) as e:
            raise UpstreamError(f"cannot reach {self.spec.label} at {self.spec.url} ({type(e).__name__})",
                                "Check the URL, the network, and that the provider is up.") from None
        if response.status_code >= 300:
            raise self.failure(response.status_code, response.text)
        return response

    def close(self) -> None:
        self.http.close()


def remote_spec(ref: ModelRef):
    from xuetu.models.remote import remote_of

    spec = remote_of(ref)
    if spec is None:
        raise BadInput(f"{ref.name} is not a remote model", "Use a local engine for it.")
    return spec


class RemoteEngine:
    name = "remote"
    cancellable = True
    remote = True

    def __init__(self, ref: ModelRef, key: str | None = None):
        self.ref = ref
        self.spec = remote_spec(ref)
        self.context_length = self.spec.context_length
        self.chat_template = None
        self.client = RemoteClient(self.spec, key)

    @classmethod
    def endpoint(cls, url: str, model: str, key: str | None = None, timeout: float = 120.0,
                 retries: int = 1) -> "RemoteEngine":
        """Any OpenAI-compatible endpoint and model, without a store entry (a --teacher-url, a --judge-url)."""
        from dataclasses import asdict
        from pathlib import Path

        from xuetu.models.remote import build

        spec = build(url=url, api_model=model, key_env="", timeout=timeout, retries=retries)
        return cls(ModelRef(name=model, path=Path("."), manifest={"remote": asdict(spec)}), key)

    # -- prompts ---------------------------------------------------------------------------------
    def encode(self, messages_or_prompt, tools: dict | None = None) -> RemotePrompt:
        if isinstance(messages_or_prompt, RemotePrompt):
            return messages_or_prompt
        if isinstance(messages_or_prompt, str):
            return RemotePrompt(messages_or_prompt)
        return RemotePrompt(wire_messages(messages_or_prompt), tools)

    def count_tokens(self, messages_or_prompt) -> int:
        return len(self.encode(messages_or_prompt))

    # -- requests --------------------------------------------------------------------------------
    def _body(self, prompt: RemotePrompt, opts: GenerateOptions) -> tuple[str, dict]:
        body = {"model": self.spec.model, "stream": True, "stream_options": {"include_usage": True},
                "temperature": opts.temperature, "top_p": opts.top_p, "max_tokens": opts.max_tokens}
        if opts.seed is not None:
            body["seed"] = opts.seed
        if opts.stop:
            body["stop"] = opts.stop
        if isinstance(prompt.messages, str):
            return "completions", {**body, "prompt": prompt.messages}
        if (fmt := _response_format(opts.format)) is not None:
            body["response_format"] = fmt
        return "chat/completions", {**body, "messages": prompt.messages, **prompt.tools}

    def generate(self, messages_or_prompt, options: GenerateOptions | None = None,
                 cancelled: threading.Event | None = None) -> Iterator[Chunk]:
        opts = options or GenerateOptions.build(self.ref.params)
        prompt = self.encode(messages_or_prompt)
        path, body = self._body(prompt, opts)
        n_prompt = len(prompt)
        response = self.client.post(path, body, stream=True, cancelled=cancelled)
        done = threading.Event()
        if cancelled is not None:  # a client that goes away closes the upstream connection, mid-read included
            threading.Thread(target=_close_when, args=(cancelled, done, response), daemon=True).start()
        try:
            yield from self._chunks(response, n_prompt, cancelled)
        finally:
            done.set()
            response.close()

    def _chunks(self, response, n_prompt: int, cancelled) -> Iterator[Chunk]:
        import httpx

        calls, finish, n_out, usage = _Calls(), None, 0, None
        try:
            for event in _events(response.iter_lines()):
                if event is None:
                    break
                try:
                    data = json.loads(event)
                except ValueError:
                    raise UpstreamError(f"{self.spec.label} sent a malformed chunk: {event[:120]!r}") from None
                if not isinstance(data, dict):
                    raise UpstreamError(f"{self.spec.label} sent a malformed chunk: {event[:120]!r}")
                if "error" in data:
                    raise UpstreamError(f"{self.spec.label} failed mid-answer: {_detail(json.dumps(data))}")
                usage = data.get("usage") or usage
                for choice in data.get("choices") or []:
                    delta = choice.get("delta") or {}
                    text = delta.get("content") if "delta" in choice else choice.get("text")
                    calls.push(delta.get("tool_calls"))
                    finish = choice.get("finish_reason") or finish
                    if text:
                        n_out += 1
                        yield Chunk(text, n_prompt, n_out)
        except (httpx.HTTPError, httpx.StreamError, OSError) as e:
            if cancelled is not None and cancelled.is_set():
                return  # closed on purpose: the client went away
            raise UpstreamError(f"{self.spec.label} broke off the answer ({type(e).__name__})",
                                "Try again; if it keeps happening, check the provider's status.") from None
        if finish is None:
            raise UpstreamError(f"{self.spec.label} ended the stream without finishing the answer",
                                "Try again; if it keeps happening, check the provider's status.")
        if usage:
            n_prompt = int(usage.get("prompt_tokens") or n_prompt)
            n_out = int(usage.get("completion_tokens") or n_out)
        tool_calls = calls.calls()
        reason = "tool_calls" if tool_calls else finish if finish in ("stop", "length", "content_filter") else "stop"
        yield Chunk("", n_prompt, n_out, reason, tool_calls)

    def info(self) -> dict:
        return {"engine": self.name, "model": self.ref.name, "device": "remote", "provider": self.spec.label,
                "url": self.spec.url, "api_model": self.spec.model, "context_length": self.context_length}

    def close(self) -> None:
        self.client.close()


def _close_when(cancelled: threading.Event, done: threading.Event, response) -> None:
    while not done.is_set():
        if cancelled.wait(0.25):
            if not done.is_set():
                response.close()
            return


def _events(lines) -> Iterator[str | None]:
    """The data of each server-sent event; None for [DONE]."""
    for line in lines:
        if not line or line.startswith(":") or not line.startswith("data:"):
            continue  # blank separators, keep-alive comments, event: and id: lines
        data = line[5:].strip()
        yield None if data == "[DONE]" else data


def _retry_after(header: str | None, default: float) -> float:
    if header:
        try:
            return max(0.0, float(header))
        except ValueError:
            pass
    return default * (0.8 + 0.4 * random.random())


def _detail(text: str) -> str:
    """The provider's own error message, short."""
    try:
        data = json.loads(text)
        err = data.get("error", data) if isinstance(data, dict) else data
        msg = err.get("message") if isinstance(err, dict) else err
        text = str(msg or text)
    except ValueError:
        pass
    return " ".join(text.split())[:300] or "no detail"
