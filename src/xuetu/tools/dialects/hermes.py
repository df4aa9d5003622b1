"""<tool_call>{"name": ..., "arguments": {...}}</tool_call>: Qwen2.5/3, Hermes 2 Pro/3, SmolLM2, and xuetu's
own prompt for templates without tools. SmolLM2 puts a JSON list of calls inside one block; both are read."""

from __future__ import annotations

import json
import re

from xuetu.tools.calls import Parsed, ToolCall, loads_calls
from xuetu.tools.dialects import register

OPEN, CLOSE = "<tool_call>", "</tool_call>"
BLOCK = re.compile(re.escape(OPEN) + r"(.*?)(?:" + re.escape(CLOSE) + r"|$)", re.S)


class Hermes:
    name = "hermes"
    markers = (OPEN,)
    leading = ()

    def detect(self, template: str) -> bool:
        return OPEN in template

    def parse(self, text: str) -> Parsed:
        if OPEN not in text:
            return Parsed(text)
        calls: list[ToolCall] = []
        for block in BLOCK.findall(text):
            found = loads_calls(block.strip())
            if found is None:
                return Parsed(text, malformed=f"the model began a tool call it did not finish: {block.strip()[:80]!r}")
            calls += found
        content = BLOCK.sub("", text).strip()
        return Parsed(content, calls)

    def render(self, calls: list[ToolCall]) -> str:
        return "\n".join(f"{OPEN}\n{json.dumps({'name': c.name, 'arguments': c.arguments}, ensure_ascii=False)}\n{CLOSE}"
                         for c in calls)


register(Hermes())
