"""The JSON schema a forced call is decoded under (tool_choice "required" or a named function).

The answer is then one JSON object {"name": ..., "arguments": {...}} whose arguments validate against the
tool's schema: llguidance enforces it on the transformers and llama.cpp engines, vLLM's structured outputs
on vLLM. Strings the schema leaves unbounded get a maxLength, objects with declared properties take no others,
and the JSON is written without free whitespace, so a small model cannot spend its whole budget inside one
string or between two keys.
"""

from __future__ import annotations

import copy

from xuetu.engines.structured import LAYOUT
from xuetu.tools.spec import Choice, Tool

MAX_STRING = 256
"""maxLength given to argument strings the tool's schema leaves unbounded."""


def _bound_strings(schema):
    """The schema with a maxLength on open strings and no keys beyond the declared properties."""
    if isinstance(schema, dict):
        out = {k: _bound_strings(v) for k, v in schema.items()}
        if out.get("type") == "string" and "maxLength" not in out and "enum" not in out and "const" not in out:
            out["maxLength"] = MAX_STRING
        if out.get("type") == "object" and "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_bound_strings(v) for v in schema]
    return schema


def call_schema(tool: Tool) -> dict:
    args = _bound_strings(copy.deepcopy(tool.parameters))
    return {"type": "object", "properties": {"name": {"const": tool.name}, "arguments": args},
            "required": ["name", "arguments"], "additionalProperties": False}


def forced_format(tools: list[Tool], choice: Choice) -> dict | None:
    """The schema for GenerateOptions.format when the choice forces a call; None otherwise."""
    if choice.mode == "function":
        schema = call_schema(next(t for t in tools if t.name == choice.name))
    elif choice.mode == "required":
        schemas = [call_schema(t) for t in tools]
        schema = schemas[0] if len(schemas) == 1 else {"anyOf": schemas}
    else:
        return None
    return {**schema, "x-guidance": LAYOUT}  # our engines add it anyway; this carries it to vLLM's llguidance
