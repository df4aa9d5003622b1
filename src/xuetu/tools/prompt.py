"""Messages and tools made ready for a model's chat template.

A template with tool support (Qwen2.5, Hermes, Llama 3.x, Mistral) gets the tools and the history as
transformers' convention has them: call arguments as objects, tool results as `tool` messages. A template
without (SmolLM2-135M's, most base chat templates) gets xuetu's documented fallback: the tools described in
the system prompt, calls written as Hermes <tool_call> blocks, and results handed back as user turns.
"""

from __future__ import annotations

import json

from xuetu.errors import BadInput
from xuetu.tools import dialects
from xuetu.tools.calls import ToolCall
from xuetu.tools.dialects import Dialect
from xuetu.tools.spec import Tool

FALLBACK = """You can call these tools (functions). Their definitions, as JSON:
<tools>
{tools}
</tools>
To call a tool, answer with nothing but one block per call:
<tool_call>
{{"name": <function-name>, "arguments": <args-json-object>}}
</tool_call>
A tool's result comes back in <tool_response> tags. If no tool helps, answer the user directly."""
"""The system prompt for templates without tool support (docs/api.md, "Tools")."""


def calls_of(message: dict) -> list[ToolCall]:
    """An assistant message's tool_calls (OpenAI's or the canonical shape) as ToolCalls."""
    out = []
    for i, c in enumerate(message.get("tool_calls") or []):
        fn = c.get("function") if isinstance(c, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise BadInput(f"tool_calls[{i}] needs function.name", param="messages")
        args = fn.get("arguments") or {}
        if isinstance(args, str):
            try:
                args = json.loads(args or "{}")
            except ValueError:
                raise BadInput(f"tool_calls[{i}].function.arguments of {fn['name']} is not JSON",
                               param="messages") from None
        if not isinstance(args, dict):
            raise BadInput(f"tool_calls[{i}].function.arguments of {fn['name']} must be a JSON object",
                           param="messages")
        out.append(ToolCall(fn["name"], args, str(c.get("id") or f"call_{i}")))
    return out


def _native(m: dict) -> dict:
    if m.get("role") == "assistant" and m.get("tool_calls"):
        return {**m, "content": m.get("content") or "", "tool_calls": [c.as_template() for c in calls_of(m)]}
    return m


def _fallback(messages: list[dict], tools: list[Tool], hermes: Dialect) -> list[dict]:
    out: list[dict] = []
    for m in messages:
        if m.get("role") == "assistant" and m.get("tool_calls"):
            text = "\n".join(p for p in (m.get("content") or "", hermes.render(calls_of(m))) if p)
            out.append({"role": "assistant", "content": text})
        elif m.get("role") == "tool":
            block = f"<tool_response>\n{m.get('content') or ''}\n</tool_response>"
            if out and out[-1].get("tool_results"):  # results of one turn's calls travel together
                out[-1] = {**out[-1], "content": out[-1]["content"] + "\n" + block}
            else:
                out.append({"role": "user", "content": block, "tool_results": True})
        else:
            out.append(m)
    out = [{k: v for k, v in m.items() if k != "tool_results"} for m in out]
    if tools:
        listing = FALLBACK.format(tools="\n".join(json.dumps(t.as_openai(), ensure_ascii=False) for t in tools))
        if out and out[0].get("role") == "system":
            out[0] = {**out[0], "content": f"{out[0]['content']}\n\n{listing}"}
        else:
            out.insert(0, {"role": "system", "content": listing})
    return out


def prepare(messages: list[dict], tools: list[Tool], template: str | None
            ) -> tuple[list[dict], list[dict] | None, Dialect]:
    """(messages for the template, tools for the template or None, the dialect the answer will be in)."""
    native = dialects.for_template(template)
    if native is not None:
        return [_native(m) for m in messages], [t.as_openai() for t in tools] or None, native
    hermes = dialects.get("hermes")
    return _fallback(messages, tools, hermes), None, hermes


def has_tool_turns(messages: list[dict]) -> bool:
    return any(m.get("role") == "tool" or m.get("tool_calls") for m in messages)
