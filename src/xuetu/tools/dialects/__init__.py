"""How each model family writes a tool call, one module per dialect behind a registry.

A dialect knows the marks that open a call (so a stream can hold them back), parses an answer into content
and calls, writes calls back as the model would (for prompts without a template of their own, and training
text), and recognises the chat templates that use it.

| dialect | families                                 | a call looks like                                        |
|---------|------------------------------------------|----------------------------------------------------------|
| hermes  | Qwen2.5/3, Hermes 2 Pro/3, SmolLM2, ours  | <tool_call>{"name": ..., "arguments": {...}}</tool_call> |
| llama3  | Llama 3.1-3.3                            | {"name": ..., "parameters": {...}} (maybe <|python_tag|>) |
| mistral | Mistral, Mixtral (v3 and later)          | [TOOL_CALLS][{"name": ..., "arguments": {...}}]          |

Templates with no tool support use hermes through xuetu's own prompt (tools/prompt.py).
"""

from __future__ import annotations

from typing import Protocol

from xuetu.tools.calls import Parsed, ToolCall


class Dialect(Protocol):
    name: str
    markers: tuple[str, ...]
    """Text that opens a call wherever it appears."""
    leading: tuple[str, ...]
    """Text that opens a call only at the start of an answer."""

    def detect(self, template: str) -> bool: ...

    def parse(self, text: str) -> Parsed: ...

    def render(self, calls: list[ToolCall]) -> str: ...


DIALECTS: dict[str, Dialect] = {}


def register(dialect: Dialect) -> Dialect:
    DIALECTS[dialect.name] = dialect
    return dialect


def get(name: str) -> Dialect:
    return DIALECTS[name]


def for_template(template: str | None) -> Dialect | None:
    """The dialect a chat template with tool support uses; None when the template has no tool support."""
    if not template or "tools" not in template:
        return None
    return next((d for d in DIALECTS.values() if d.detect(template)), None)


from xuetu.tools.dialects import hermes, llama3, mistral  # noqa: E402,F401  (each registers itself)
