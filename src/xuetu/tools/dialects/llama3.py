"""Llama 3.1-3.3: the answer is one JSON object {"name": ..., "parameters": {...}} (several joined by ";"),
sometimes after <|python_tag|>."""

from __future__ import annotations

import json

from xuetu.tools.calls import Parsed, ToolCall, loads_calls
from xuetu.tools.dialects import register

TAG = "<|python_tag|>"


class Llama3:
    name = "llama3"
    markers = (TAG,)
    leading = ("{",)

    def detect(self, template: str) -> bool:
        return TAG in template or ("ipython" in template and "parameters" in template)

    def parse(self, text: str) -> Parsed:
        body = text.strip()
        if body.startswith(TAG):
            body = body[len(TAG):].strip()
        elif not body.startswith("{"):
            return Parsed(text)
        calls = []
        for part in body.split(";") if not body.startswith("[") else [body]:
            if not part.strip():
                continue
            found = loads_calls(part.strip(), args_key="parameters")
            if found is None:
                if text.strip().startswith(TAG) or '"name"' in body:
                    return Parsed(text, malformed=f"the model began a tool call it did not finish: {body[:80]!r}")
                return Parsed(text)  # JSON, or braces, that is no call: an ordinary answer
            calls += found
        return Parsed("", calls)

    def render(self, calls: list[ToolCall]) -> str:
        return "; ".join(json.dumps({"name": c.name, "parameters": c.arguments}, ensure_ascii=False) for c in calls)


register(Llama3())
