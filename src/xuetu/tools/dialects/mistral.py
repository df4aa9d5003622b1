"""Mistral and Mixtral: [TOOL_CALLS] then a JSON list of calls (v3), or name[ARGS]{...} per call (v11+)."""

from __future__ import annotations

import json

from xuetu.tools.calls import Parsed, ToolCall, loads_calls
from xuetu.tools.dialects import register

TAG, ARGS = "[TOOL_CALLS]", "[ARGS]"


def _v11(part: str) -> list[ToolCall] | None:
    """name[ARGS]{...}, as Mistral's v11 tokenizers write one call."""
    name, _, args = part.partition(ARGS)
    try:
        obj = json.loads(args)
    except ValueError:
        return None
    return [ToolCall(name.strip(), obj)] if name.strip() and isinstance(obj, dict) else None


class Mistral:
    name = "mistral"
    markers = (TAG,)
    leading = ()

    def detect(self, template: str) -> bool:
        return TAG in template

    def parse(self, text: str) -> Parsed:
        if TAG not in text:
            return Parsed(text)
        content, _, rest = text.partition(TAG)
        calls: list[ToolCall] = []
        for part in rest.split(TAG):
            part = part.strip()
            found = loads_calls(part) if not (ARGS in part and not part.startswith("[")) else _v11(part)
            if found is None:
                return Parsed(text, malformed=f"the model began a tool call it did not finish: {part[:80]!r}")
            calls += found
        return Parsed(content.strip(), calls)

    def render(self, calls: list[ToolCall]) -> str:
        return TAG + json.dumps([{"name": c.name, "arguments": c.arguments} for c in calls], ensure_ascii=False)


register(Mistral())
