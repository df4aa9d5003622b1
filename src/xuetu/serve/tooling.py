"""Tool calling in a generation: the prompt with the tools, a forced call's constraint, and the answer split
into content and calls as it streams. Both API families use it; routers only translate shapes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from xuetu.engines.base import Chunk, GenerateOptions
from xuetu.errors import BadInput
from xuetu.tools import Choice, Tool, parse_choice, parse_tools
from xuetu.tools.constrain import forced_format
from xuetu.tools.dialects import Dialect
from xuetu.tools.prompt import has_tool_turns, prepare
from xuetu.tools.stream import CallSplitter

log = logging.getLogger("xuetu.serve")


@dataclass
class ToolUse:
    """The tools a request offers and what it allows the model to do with them."""

    tools: list[Tool] = field(default_factory=list)
    choice: Choice = field(default_factory=lambda: Choice("none"))
    parallel: bool = True

    @property
    def active(self) -> bool:
        return bool(self.tools) and self.choice.mode != "none"

    @property
    def forces_call(self) -> bool:
        """The answer must be a call: it is decoded under the call's JSON schema."""
        return self.active and self.choice.forced

    @classmethod
    def parse(cls, tools, choice=None, parallel: bool | None = None) -> "ToolUse":
        parsed = parse_tools(tools)
        return cls(parsed, parse_choice(choice, parsed), True if parallel is None else bool(parallel))


def check_history(messages: list[dict]) -> None:
    """Every tool message answers a call made earlier in the conversation."""
    pending: set[str] = set()
    names: set[str] = set()
    for i, m in enumerate(messages):
        for c in m.get("tool_calls") or []:
            if isinstance(c, dict):
                pending.add(str(c.get("id") or ""))
                names.add(str((c.get("function") or {}).get("name") or ""))
        if m.get("role") == "tool":
            ref = m.get("tool_call_id")
            if ref is not None and ref not in pending:
                raise BadInput(f"messages[{i}] is a tool result for tool_call_id {ref!r}, which no earlier assistant "
                               "message called", "Send the assistant message with that tool call before its result.",
                               param="messages")
            if ref is None and not (pending or names & {m.get("name")}):
                raise BadInput(f"messages[{i}] is a tool result, but no earlier assistant message called a tool",
                               param="messages")


def prepared(prompt, tools: ToolUse | None, template: str | None, native: bool = False
             ) -> tuple[object, list[dict] | dict | None, Dialect | None]:
    """(the prompt for the encoder, the tools for the template, the dialect of the answer).

    A `native` engine (a remote model) takes the tools as the request gave them and returns the calls itself:
    nothing is rendered or parsed here, and the second item is the request's tool fields in OpenAI's shape."""
    if isinstance(prompt, str) or (not (tools and tools.active) and not has_tool_turns(prompt)):
        return prompt, None, None
    check_history(prompt)
    if native:
        return prompt, wire(tools), None
    offered = tools.tools if tools and tools.active else []
    messages, template_tools, dialect = prepare(prompt, offered, template)
    return messages, template_tools, dialect


def wire(tools: ToolUse | None) -> dict | None:
    """The tools and tool choice in OpenAI's request shape, for an upstream that calls tools itself."""
    if not tools or not tools.tools:
        return None
    choice = tools.choice
    body = {"tools": [t.as_openai() for t in tools.tools],
            "tool_choice": {"type": "function", "function": {"name": choice.name}} if choice.mode == "function"
            else choice.mode}
    if not tools.parallel:
        body["parallel_tool_calls"] = False
    return body


def constrain(options: GenerateOptions, tools: ToolUse | None, native: bool = False) -> None:
    """A forced call decodes under its JSON schema (llguidance or a llama.cpp grammar); a native engine forces
    it upstream, by tool_choice."""
    if not (tools and tools.forces_call) or native:
        return
    if options.format is not None:
        raise BadInput("tool_choice forces a tool call, so response_format / format cannot apply as well",
                       "Drop one of them.", param="tool_choice")
    options.format = forced_format(tools.tools, tools.choice)


async def native_calls(chunks: AsyncIterator[Chunk]) -> AsyncIterator[Chunk]:
    """A remote model's answer, its calls (plain dicts from the engine) made ToolCalls as a local model's are."""
    from xuetu.tools.calls import ToolCall

    try:
        async for chunk in chunks:
            if chunk.tool_calls:
                chunk.tool_calls = [c if isinstance(c, ToolCall) else ToolCall(c["name"], c["arguments"], c["id"])
                                    for c in chunk.tool_calls]
            yield chunk
    finally:
        await chunks.aclose()


async def split_calls(chunks: AsyncIterator[Chunk], tools: ToolUse, dialect: Dialect) -> AsyncIterator[Chunk]:
    """The answer with calls held back from its text; the last chunk carries the calls, if any."""
    splitter = CallSplitter(dialect, {t.name for t in tools.tools}, forced=tools.choice.forced)
    try:
        async for chunk in chunks:
            text = splitter.push(chunk.text)
            if chunk.finish_reason is None:
                if text:
                    yield Chunk(text, chunk.prompt_tokens, chunk.completion_tokens)
                continue
            rest, parsed = splitter.finish()
            if parsed.malformed:
                log.info("tool call not read: %s", parsed.malformed)
            calls = parsed.calls if parsed.calls and chunk.finish_reason != "content_filter" else None
            if calls and not tools.parallel:
                calls = calls[:1]
            finish = "tool_calls" if calls else chunk.finish_reason
            yield Chunk(text + rest, chunk.prompt_tokens, chunk.completion_tokens, finish, calls)
    finally:
        await chunks.aclose()
