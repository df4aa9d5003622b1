"""A parsed tool call, and what a dialect's parser returns for one answer."""

from __future__ import annotations

import json
from dataclasses import dataclass, field


@dataclass
class ToolCall:
    name: str
    arguments: dict
    id: str = ""

    def arguments_json(self) -> str:
        return json.dumps(self.arguments, ensure_ascii=False)

    def as_openai(self) -> dict:
        """OpenAI's wire shape: arguments as a JSON string."""
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments_json()}}

    def as_template(self) -> dict:
        """The shape chat templates render (transformers' convention): arguments as an object."""
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}


@dataclass
class Parsed:
    """One answer split into what the user reads and the calls it makes."""

    content: str
    calls: list[ToolCall] = field(default_factory=list)
    malformed: str | None = None
    """Why a call the model began could not be read (then content holds the raw text and calls is empty)."""


def call_from_json(obj, args_key: str = "arguments") -> ToolCall | None:
    """{"name": ..., "arguments": {...}} (or the dialect's key for the arguments) as a ToolCall, else None."""
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        return None
    args = obj.get(args_key, obj.get("arguments", obj.get("parameters", {})))
    if isinstance(args, str):  # some models write the arguments as a JSON string
        try:
            args = json.loads(args)
        except ValueError:
            return None
    if not isinstance(args, dict):
        return None
    return ToolCall(obj["name"], args)


def loads_calls(text: str, args_key: str = "arguments") -> list[ToolCall] | None:
    """One call object or a list of them, as JSON text; None when it is not that."""
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    items = obj if isinstance(obj, list) else [obj]
    calls = [call_from_json(o, args_key) for o in items]
    return calls if calls and all(calls) else None
