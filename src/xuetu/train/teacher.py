"""The teacher of a distillation: the prompts it is asked, and the two kinds of teacher that answer them.

    prompts = read_prompts("prompts.jsonl")            # [Prompt(messages, system)]
    teacher = open_teacher(name="smollm2:135m")         # a model in the store, on our own engine
    teacher = open_teacher(name=None, url="http://127.0.0.1:11434/v1", key=None)   # any OpenAI-compatible server
    answer = teacher.ask(prompt.chat(cot=True), max_tokens=512, temperature=0)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from xuetu.errors import XuetuError

COT_INSTRUCTION = "Think step by step: show your reasoning first, then give the final answer."
PROMPT_KEYS = ("prompt", "question", "query", "instruction", "input", "问题")


@dataclass
class Prompt:
    messages: list[dict]
    """The conversation so far, ending with the user's turn (no system message)."""
    system: str | None = None
    example: dict = field(default_factory=dict, compare=False)
    """The prompt record's own fields as read (a reference answer, say), for rewards that need them."""

    def chat(self, cot: bool = False) -> list[dict]:
        """The messages sent to the teacher: the system prompt first; with cot, the reasoning instruction."""
        system = "\n\n".join(s for s in (self.system, COT_INSTRUCTION if cot else None) if s)
        return ([{"role": "system", "content": system}] if system else []) + self.messages


def _prompt_of(obj) -> Prompt:
    from xuetu.data.formats import to_record

    if isinstance(obj, dict) and not any(k in obj for k in ("messages", "conversations")):
        for key in PROMPT_KEYS:  # a bare prompt: {"prompt": "..."}, {"instruction": ..., "input": ...}
            if isinstance(obj.get(key), str):
                text = obj[key]
                if key == "instruction" and isinstance(obj.get("input"), str) and obj["input"].strip():
                    text = f"{text}\n{obj['input']}"
                return Prompt([{"role": "user", "content": text}], obj.get("system") or None, obj)
    record = to_record(obj)
    example = obj if isinstance(obj, dict) else {}
    if record.is_text:
        return Prompt([{"role": "user", "content": record.text}], example=example)
    messages = list(record.messages)
    while messages and messages[-1]["role"] == "assistant":  # the data's own answer is not the teacher's
        messages.pop()
    return Prompt(messages, record.system, example)


def read_prompts(path: str | Path) -> list[Prompt]:
    """Every prompt of a file (JSONL of {"prompt"}, {"messages"}, Alpaca, QA…; any answers in it are dropped)."""
    from xuetu.data.formats import FormatError
    from xuetu.data.readers import read

    path = Path(path)
    if not path.exists():
        raise XuetuError(f"{path} does not exist", "Give a JSONL file of prompts, e.g. {\"prompt\": \"...\"} per line.")
    prompts, empty = [], []
    for item in read(path):
        item.parse()
        try:
            if item.error:
                raise FormatError(item.error)
            prompt = _prompt_of(item.obj)
        except FormatError as e:
            raise XuetuError(f"{item.source}: {e}") from None
        if not any(m["role"] == "user" and m["content"].strip() for m in prompt.messages) \
                or prompt.messages[-1]["role"] != "user":
            empty.append(item.source)
            continue
        prompts.append(prompt)
    if empty:
        raise XuetuError(f"{len(empty)} prompts have no user text to answer (first: {empty[0]})",
                         "Each line needs a question: {\"prompt\": \"...\"} or messages ending with a user turn.")
    if not prompts:
        raise XuetuError(f"{path} holds no prompts", "Give a JSONL file with one {\"prompt\": \"...\"} per line.")
    return prompts


class LocalTeacher:
    """A model in the store, answering on xuetu's own engine (a remote one at its provider)."""

    def __init__(self, name: str):
        from xuetu import engines, models

        ref = models.resolve(name)
        self.remote = ref.remote is not None
        self.engine = engines.load(ref, engine="remote" if self.remote else "transformers")
        self.name = self.engine.ref.name

    def ask(self, messages: list[dict], max_tokens: int, temperature: float, seed: int = 0,
            schema: dict | None = None) -> str:
        """One answer; with temperature > 0, a different seed draws a different sample; with a JSON schema, the
        answer is decoded to follow it."""
        from xuetu.engines.base import GenerateOptions

        opts = GenerateOptions(temperature=temperature, max_tokens=max_tokens, seed=seed, format=schema)
        return "".join(c.text for c in self.engine.generate(messages, opts)).strip()


class EndpointTeacher:
    """Any OpenAI-compatible chat completions endpoint (xuetu serve, Ollama, vLLM, a hosted API), on the remote
    engine: its retries, timeouts and errors."""

    def __init__(self, url: str, name: str | None, key: str | None, timeout: float):
        from xuetu.engines.remote import RemoteEngine
        from xuetu.errors import UpstreamError

        self.url = url.rstrip("/")
        key = key or os.environ.get("OPENAI_API_KEY") or None
        if name is None:  # the endpoint's first model
            probe = RemoteEngine.endpoint(self.url, "-", key, timeout)
            try:
                listed = [m.get("id") for m in probe.client.get("models").json().get("data") or []]
            except UpstreamError as e:
                raise self._failure(e) from None
            except (ValueError, AttributeError):
                listed = []
            finally:
                probe.close()
            if not listed:
                raise XuetuError(f"the teacher at {self.url} serves no model", "Name one with --teacher NAME.")
            name = listed[0]
        self.name = name
        self.engine = RemoteEngine.endpoint(self.url, name, key, timeout)

    def _failure(self, e: XuetuError) -> XuetuError:
        if e.message.startswith("cannot reach"):
            return XuetuError(f"cannot reach the teacher at {self.url}",
                              "Check that the server is running, the host and port are right, and the URL ends in "
                              "/v1 (e.g. http://127.0.0.1:11434/v1).")
        if " refused " in e.message:
            return XuetuError(f"the teacher at {self.url} refused the API key ({e.message})",
                              "Pass the right key with --teacher-key (or set OPENAI_API_KEY).")
        return XuetuError(f"the teacher at {self.url} failed: {e.message}", e.hint)

    def ask(self, messages: list[dict], max_tokens: int, temperature: float, seed: int = 0,
            schema: dict | None = None) -> str:
        """One answer; a JSON schema goes as response_format, and an endpoint that refuses it answers in free text."""
        from xuetu.engines.base import GenerateOptions
        from xuetu.errors import BadInput, UpstreamError

        def answer(fmt):
            chunks = list(self.engine.generate(messages, GenerateOptions(temperature=temperature, max_tokens=max_tokens,
                                                                         seed=seed, format=fmt)))
            return "".join(c.text for c in chunks), chunks[-1].finish_reason if chunks else None

        try:
            try:
                text, finish = answer(schema)
            except BadInput:
                if schema is None:
                    raise
                text, finish = answer(None)
        except (UpstreamError, BadInput) as e:
            raise self._failure(e) from None
        if finish == "content_filter":
            raise XuetuError(f"the teacher at {self.url} blocked a request by its content policy: {text[:160]}",
                             "Its refusal is not an answer to learn from. Loosen the server's guard (xuetu serve "
                             "--no-guard, or a --guard-policy that allows these prompts) or leave the prompt out.")
        return text.strip()


def open_teacher(name: str | None, url: str | None = None, key: str | None = None, timeout: float = 600.0):
    if url:
        return EndpointTeacher(url, name, key, timeout)
    if not name:
        raise XuetuError("no teacher: pass --teacher NAME (a model in the store) or --teacher-url URL")
    return LocalTeacher(name)
