"""The Engine interface every inference engine implements, and the types it speaks.

    engine.generate(messages_or_prompt, options) -> Iterator[Chunk]

A list of {"role", "content"} messages is formatted with the model's own chat template;
a plain string is completed as it is. Every chunk carries the new text and running token
counts; the last one carries `finish_reason` ("stop" or "length").
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from typing import Protocol, runtime_checkable

from xuetu.errors import BadInput

Messages = list[dict]

MAX_STOPS = 16
"""Most stop strings a request may give (OpenAI allows 4; Ollama sets no limit)."""
MAX_STOP_CHARS = 256
"""Longest stop string a request may give, in characters."""


@dataclass
class Chunk:
    text: str
    """New text since the previous chunk (may be empty on the final chunk)."""
    prompt_tokens: int
    completion_tokens: int
    """Tokens generated so far."""
    finish_reason: str | None = None
    """None until the last chunk; then "stop" (end of turn or a stop string) or "length"."""
    tool_calls: list | None = None
    """On the last chunk of an answer that calls tools: its xuetu.tools.ToolCall list (set by the serving layer,
    which then reports finish_reason "tool_calls")."""


@dataclass
class GenerateOptions:
    """Sampling settings. Defaults follow Ollama's; a model's own params override them."""

    temperature: float = 0.8
    """0 means greedy decoding."""
    top_p: float = 0.9
    """Nucleus sampling: keep the smallest set of tokens whose probability sums to top_p."""
    top_k: int = 40
    """Keep only the k most likely tokens; 0 turns it off."""
    max_tokens: int = 512
    """Most tokens to generate."""
    seed: int | None = None
    """Fixes the sampling for reproducible answers."""
    stop: list[str] = field(default_factory=list)
    """Strings that end the answer; they are not included in it."""
    repeat_penalty: float = 1.1
    """>1 discourages repeating any of the last 64 tokens; 1 turns it off."""
    format: str | dict | None = None
    """"json" for any JSON object, or a JSON schema (dict) the answer must follow."""

    def __post_init__(self):
        checks = [
            ("temperature", isinstance(self.temperature, (int, float)) and 0 <= self.temperature <= 5, "a number in [0, 5]"),
            ("top_p", isinstance(self.top_p, (int, float)) and 0 < self.top_p <= 1, "a number in (0, 1]"),
            ("top_k", isinstance(self.top_k, int) and self.top_k >= 0, "an integer >= 0"),
            ("max_tokens", isinstance(self.max_tokens, int) and self.max_tokens >= 1, "an integer >= 1"),
            ("seed", self.seed is None or isinstance(self.seed, int), "an integer"),
            ("repeat_penalty", isinstance(self.repeat_penalty, (int, float)) and 0 < self.repeat_penalty <= 10,
             "a number in (0, 10]"),
        ]
        for name, ok, what in checks:
            if not ok or isinstance(getattr(self, name), bool):
                raise BadInput(f"{name} must be {what}, got {getattr(self, name)!r}", param=name)
        if isinstance(self.stop, str):
            self.stop = [self.stop]
        if not isinstance(self.stop, list) or not all(isinstance(s, str) and s for s in self.stop):
            raise BadInput("stop must be a list of non-empty strings", param="stop")
        if len(self.stop) > MAX_STOPS or any(len(s) > MAX_STOP_CHARS for s in self.stop):
            raise BadInput(f"stop takes at most {MAX_STOPS} strings of at most {MAX_STOP_CHARS} characters each, "
                           f"got {len(self.stop)} (longest {max(map(len, self.stop))} characters)", param="stop")
        if self.format not in (None, "json") and not isinstance(self.format, dict):
            raise BadInput(f'format must be "json" or a JSON schema object, got {self.format!r}', param="format")

    @classmethod
    def build(cls, model_params: dict | None = None, **overrides) -> "GenerateOptions":
        """Defaults < the model's params < what the user asked for (None means 'not given')."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in (model_params or {}).items() if k in known}
        values.update({k: v for k, v in overrides.items() if v is not None and k in known})
        return cls(**values)

    def to_dict(self) -> dict:
        return asdict(self)


@runtime_checkable
class Engine(Protocol):
    name: str

    def generate(self, messages_or_prompt: Messages | str, options: GenerateOptions | None = None) -> Iterator[Chunk]:
        ...

    def count_tokens(self, messages_or_prompt: Messages | str) -> int:
        ...

    def info(self) -> dict:
        ...

    def close(self) -> None:
        ...
