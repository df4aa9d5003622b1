"""The canonical record every reader produces and every writer consumes.

A record is either a conversation (`messages`, with an optional `system` prompt and optional `tools`)
or raw `text` for pretraining. `meta` keeps where it came from and any fields the source had besides.

Tool calling uses the OpenAI messages shape, with call arguments parsed into a dict:

    tools:     [{"type": "function", "function": {"name", "description"?, "parameters"?}}, ...]
    a call:    {"role": "assistant", "content": "" (or text),
                "tool_calls": [{"id": "call_0", "type": "function", "function": {"name": str, "arguments": dict}}]}
    a result:  {"role": "tool", "content": str, "tool_call_id": "call_0", "name": the called function's name}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field


class FormatError(ValueError):
    """A record no known format fits, or a field of the wrong type."""


@dataclass
class Record:
    messages: list[dict] = field(default_factory=list)
    """[{"role": "user" | "assistant" | "tool", "content": str}, ...] without the system prompt; assistant
    messages may carry "tool_calls" and tool messages carry "tool_call_id" and "name" (see the module doc)."""
    system: str | None = None
    text: str | None = None
    """Raw text, for pretraining records (then messages is empty)."""
    meta: dict = field(default_factory=dict)
    """source ("file:line"), format (the detected input format), and extra fields of the input."""
    tools: list[dict] | None = None
    """OpenAI tool definitions offered to the model in this conversation, or None."""
    rejected: dict | None = None
    """A preference pair: the assistant message the last one (the chosen answer) was preferred to."""
    label: bool | None = None
    """An unpaired preference example (KTO): whether the last assistant message is desirable."""

    @property
    def is_text(self) -> bool:
        return self.text is not None

    def contents(self) -> list[str]:
        """Every piece of text in the record, in order; a tool call appears as its name and JSON arguments."""
        if self.is_text:
            return [self.text]
        out = [self.system] if self.system else []
        for m in self.messages:
            out.append(m["content"])
            out += [call_text(c) for c in m.get("tool_calls") or ()]
        if self.rejected is not None:
            out.append(self.rejected["content"])
        return out

    def joined(self) -> str:
        """All text, for hashing, language id and quality checks."""
        return "\n".join(self.contents())

    def map_text(self, fn) -> "Record":
        """A copy with fn applied to every text field: contents, not tool-call arguments or tool definitions."""
        return Record(messages=[{**m, "content": fn(m["content"])} for m in self.messages],
                      system=fn(self.system) if self.system else self.system,
                      text=fn(self.text) if self.text is not None else None, meta=self.meta, tools=self.tools,
                      rejected={**self.rejected, "content": fn(self.rejected["content"])} if self.rejected else None,
                      label=self.label)

    @property
    def turns(self) -> int:
        return sum(1 for m in self.messages if m["role"] == "assistant")

    @property
    def is_pair(self) -> bool:
        return self.rejected is not None

    @property
    def is_preference(self) -> bool:
        """A chosen/rejected pair or a labelled (KTO) example: data for preference training."""
        return self.rejected is not None or self.label is not None

    def rejected_messages(self) -> list[dict]:
        """The conversation with the rejected answer in place of the chosen one."""
        return self.messages[:-1] + [self.rejected]

    @property
    def has_tool_calls(self) -> bool:
        return any(m.get("tool_calls") for m in self.messages)

    @property
    def uses_tools(self) -> bool:
        """Tool definitions, tool calls or tool results: what only the messages and sharegpt formats can hold."""
        return bool(self.tools) or any(m.get("tool_calls") or m["role"] == "tool" for m in self.messages)


def call_text(call: dict) -> str:
    """A tool call as text, for dedup, PII search and quality checks: `name {"arg": value}`."""
    fn = call["function"]
    return f"{fn['name']} {json.dumps(fn['arguments'], ensure_ascii=False)}"
