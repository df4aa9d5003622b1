"""Tool definitions and tool choice as requests give them, checked once and turned into plain values.

Both API families send OpenAI's shape: `{"type": "function", "function": {"name", "description"?,
"parameters"?, "strict"?}}`. Everything here raises BadInput with the request field at fault, so a bad tool
list is a 400 that says which tool and why, never a failure part-way through an answer.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from xuetu.errors import BadInput

MAX_TOOLS = 128
"""Most tools a request may list (OpenAI's own limit)."""
MAX_TOOLS_CHARS = 64_000
"""Most characters the tool list may take as JSON: it is rendered into every prompt."""
NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
"""Function names OpenAI accepts: letters, digits, underscore, dot and dash, at most 64."""


@dataclass(frozen=True)
class Tool:
    name: str
    description: str = ""
    parameters: dict = field(default_factory=lambda: {"type": "object", "properties": {}})

    def as_openai(self) -> dict:
        """The definition as chat templates and clients expect it."""
        fn = {"name": self.name, "description": self.description, "parameters": self.parameters}
        return {"type": "function", "function": fn}


@dataclass(frozen=True)
class Choice:
    """What the request allows: "none", "auto", "required", or one named function (`name`)."""

    mode: str = "auto"
    name: str | None = None

    @property
    def forced(self) -> bool:
        return self.mode in ("required", "function")


def _check_schema(schema, where: str) -> dict:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    if not isinstance(schema, dict):
        raise BadInput(f"{where}.parameters must be a JSON schema object, got {type(schema).__name__}", param=where)
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as e:
        path = "/".join(str(p) for p in e.path) or "(top)"
        raise BadInput(f"{where}.parameters is not a valid JSON schema at {path}: {e.message}",
                       "Give parameters as a JSON schema, e.g. {\"type\": \"object\", \"properties\": {...}}.",
                       param=where) from None
    if schema.get("type", "object") != "object":
        raise BadInput(f"{where}.parameters must describe an object (type \"object\"), got {schema.get('type')!r}",
                       param=where)
    return schema


def _tool(raw, i: int) -> Tool:
    where = f"tools[{i}]"
    if not isinstance(raw, dict) or raw.get("type", "function") != "function" or not isinstance(
            raw.get("function"), dict):
        raise BadInput(f'{where} must be {{"type": "function", "function": {{"name": ..., "parameters": ...}}}}',
                       param="tools")
    fn = raw["function"]
    name = fn.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise BadInput(f"{where}.function.name must be 1-64 letters, digits, _ . or -, got {name!r}", param="tools")
    description = fn.get("description") or ""
    if not isinstance(description, str):
        raise BadInput(f"{where}.function.description must be a string", param="tools")
    params = fn.get("parameters")
    params = {"type": "object", "properties": {}} if params is None else _check_schema(params, where)
    # `strict` is accepted and needs nothing more: a forced call is always decoded under its schema, and under
    # "auto" no tool's schema can be enforced before the model has chosen it.
    return Tool(name, description, params)


def parse_tools(raw) -> list[Tool]:
    """The request's tool list, checked: shape, names unique and well-formed, schemas valid, size bounded."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise BadInput("tools must be a list of function definitions", param="tools")
    if len(raw) > MAX_TOOLS:
        raise BadInput(f"tools lists {len(raw)} functions; at most {MAX_TOOLS} are allowed", param="tools")
    size = len(json.dumps(raw, ensure_ascii=False, default=str))
    if size > MAX_TOOLS_CHARS:
        raise BadInput(f"the tool list is {size} characters of JSON; at most {MAX_TOOLS_CHARS} are allowed",
                       "Send fewer tools, or shorter descriptions.", param="tools")
    tools = [_tool(t, i) for i, t in enumerate(raw)]
    names = [t.name for t in tools]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise BadInput(f"tools lists the function {dup!r} twice; names must be unique", param="tools")
    return tools


def parse_choice(raw, tools: list[Tool]) -> Choice:
    """tool_choice: "none", "auto", "required", or {"type": "function", "function": {"name": ...}}."""
    if raw is None:
        return Choice("auto" if tools else "none")
    if isinstance(raw, str):
        if raw not in ("none", "auto", "required"):
            raise BadInput(f'tool_choice must be "none", "auto", "required" or a named function, got {raw!r}',
                           param="tool_choice")
        if raw == "required" and not tools:
            raise BadInput('tool_choice is "required" but the request lists no tools', param="tool_choice")
        return Choice(raw)
    name = raw.get("function", {}).get("name") if isinstance(raw, dict) and isinstance(raw.get("function"),
                                                                                        dict) else None
    if not isinstance(name, str):
        raise BadInput('a named tool_choice is {"type": "function", "function": {"name": "..."}}', param="tool_choice")
    if name not in {t.name for t in tools}:
        known = ", ".join(t.name for t in tools) or "none"
        raise BadInput(f"tool_choice names the function {name!r}, which is not in tools (tools: {known})",
                       param="tool_choice")
    return Choice("function", name)
