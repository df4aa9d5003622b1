"""Tool calling in records: read tool definitions, calls and results into the canonical shape
(see xuetu.data.record), check them, and write them back as OpenAI messages or LLaMA-Factory ShareGPT.

Input shapes accepted:
- tools: a list, or a JSON string of one (LLaMA-Factory's column), of OpenAI entries
  {"type": "function", "function": {...}} or bare function objects {"name", "description", "parameters"}.
- calls: OpenAI {"id"?, "type", "function": {"name", "arguments"}}, or flat {"name", "arguments"}; arguments a
  JSON object or a JSON string of one. A ShareGPT function_call value is one call or a list of them, as JSON.
- results: tool messages with tool_call_id, or without one (ShareGPT observations): then they answer the
  earliest call not yet answered.
Calls without ids get call_0, call_1, ... in record order.
"""

from __future__ import annotations

import json

from xuetu.data.record import FormatError

TOOL_NEEDS = "tool calls need the messages or sharegpt format"


def _json(value: str, where: str, what: str):
    try:
        return json.loads(value)
    except ValueError:
        raise FormatError(f"{where} is not valid JSON ({what})") from None


def parse_tools(value, where: str = "tools") -> list[dict] | None:
    """Canonical tool definitions from a list or a JSON string; None when there are none."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        value = _json(value, where, "expected a list of tool definitions")
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise FormatError(f"{where} must be a list of tool definitions, got {type(value).__name__}")
    tools = []
    for i, tool in enumerate(value):
        if not isinstance(tool, dict):
            raise FormatError(f"{where}[{i}] must be an object, got {type(tool).__name__}")
        if "function" in tool:
            wrapped = tool
        else:  # a bare function object, or the flat {"type": "function", "name", ...} of OpenAI's Responses API
            wrapped = {"type": "function", "function": {k: v for k, v in tool.items() if k != "type"}}
        fn = wrapped["function"]
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"].strip():
            raise FormatError(f"{where}[{i}] has no function.name")
        if wrapped.get("type", "function") != "function":
            raise FormatError(f"{where}[{i}].type must be \"function\", got {wrapped['type']!r}")
        tools.append({**wrapped, "type": "function"})
    return tools or None


def parse_arguments(value, where: str) -> dict:
    if value is None or (isinstance(value, str) and not value.strip()):
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise FormatError(f"{where} is not a JSON object (invalid JSON)") from None
    if not isinstance(value, dict):
        raise FormatError(f"{where} is not a JSON object (got {type(value).__name__})")
    return value


def parse_call(call, where: str) -> dict:
    """One canonical call (id None when the input has none; link_calls assigns it)."""
    if not isinstance(call, dict):
        raise FormatError(f"{where} must be an object, got {type(call).__name__}")
    fn, fn_where = (call["function"], f"{where}.function") if "function" in call else (call, where)
    if not isinstance(fn, dict):
        raise FormatError(f"{fn_where} must be an object, got {type(fn).__name__}")
    name = fn.get("name")
    if not isinstance(name, str) or not name.strip():
        raise FormatError(f"{fn_where}.name is missing: a tool call needs the function's name")
    arguments = parse_arguments(fn.get("arguments", fn.get("parameters")), f"{fn_where}.arguments")
    call_id = call.get("id")
    if call_id is not None and not isinstance(call_id, str):
        raise FormatError(f"{where}.id must be a string, got {type(call_id).__name__}")
    return {"id": call_id or None, "type": "function", "function": {"name": name, "arguments": arguments}}


def parse_calls(value, where: str) -> list[dict]:
    """An OpenAI tool_calls list (may be empty)."""
    if not isinstance(value, list):
        raise FormatError(f"{where} must be a list of calls, got {type(value).__name__}")
    return [parse_call(c, f"{where}[{j}]") for j, c in enumerate(value)]


def parse_function_call(value, where: str) -> list[dict]:
    """A ShareGPT function_call turn's value: one call or a list of calls, as JSON (or already parsed)."""
    if isinstance(value, str):
        value = _json(value, where, 'expected {"name": ..., "arguments": {...}} or a list of such calls')
    calls = parse_calls(value, where) if isinstance(value, list) else [parse_call(value, where)]
    if not calls:
        raise FormatError(f"{where} holds no call")
    return calls


def link_calls(messages: list[dict], paths: list[str]) -> None:
    """In place: give calls without ids deterministic ones (call_0, call_1, ...) and tie each tool result to
    its call (tool_call_id and name). paths[i] names messages[i] in the input, for errors."""
    used = {c["id"] for m in messages for c in m.get("tool_calls") or () if c["id"]}
    fresh = (f"call_{n}" for n in range(len(used) + sum(len(m.get("tool_calls") or ()) for m in messages) + 1))
    names: dict[str, str] = {}  # id -> function name, of the calls so far
    pending: list[str] = []  # ids of calls not answered yet, in order
    for m, path in zip(messages, paths):
        for c in m.get("tool_calls") or ():
            if not c["id"]:
                c["id"] = next(i for i in fresh if i not in used)
            names[c["id"]] = c["function"]["name"]
            pending.append(c["id"])
        if m["role"] != "tool":
            continue
        call_id = m.get("tool_call_id")
        if call_id is None:
            if not pending:
                raise FormatError(f"{path} is a tool result, but no earlier tool call is waiting for one")
            call_id = pending[0]
        elif not isinstance(call_id, str) or call_id not in names:
            raise FormatError(f"{path}.tool_call_id {call_id!r} matches no earlier tool call")
        if m.get("name") not in (None, "", names[call_id]):
            raise FormatError(f"{path}.name {m['name']!r} is not the name of the call it answers "
                              f"({call_id}: {names[call_id]!r})")
        if call_id in pending:
            pending.remove(call_id)
        m["tool_call_id"], m["name"] = call_id, names[call_id]


def wire_message(m: dict) -> dict:
    """A canonical message in OpenAI's wire shape: call arguments as JSON strings."""
    if not m.get("tool_calls"):
        return m
    calls = [{**c, "function": {**c["function"], "arguments": dumps(c["function"]["arguments"])}}
             for c in m["tool_calls"]]
    return {**m, "tool_calls": calls}


def sharegpt_turns(messages: list[dict]) -> list[dict]:
    """Canonical messages as ShareGPT turns in LLaMA-Factory's shape: a call is a function_call turn (after a
    gpt turn when it also says something), a result an observation turn. Ids are written only where reading
    the turns back would not give the same ones."""
    default_ids = [c["id"] for m in messages for c in m.get("tool_calls") or ()] == \
        [f"call_{n}" for n in range(sum(len(m.get("tool_calls") or ()) for m in messages))]
    back = {"user": "human", "assistant": "gpt", "system": "system"}
    turns, pending = [], []
    for m in messages:
        if m["role"] == "tool":
            turn, call_id = {"from": "observation", "value": m["content"]}, m.get("tool_call_id")
            if call_id is not None and (not pending or call_id != pending[0]):
                turn["tool_call_id"] = call_id
            if call_id in pending:
                pending.remove(call_id)
            turns.append(turn)
            continue
        calls = m.get("tool_calls")
        if not calls or m["content"]:
            turns.append({"from": back[m["role"]], "value": m["content"]})
        if calls:
            pending += [c["id"] for c in calls]
            out = [{**({} if default_ids else {"id": c["id"]}), "name": c["function"]["name"],
                    "arguments": c["function"]["arguments"]} for c in calls]
            turns.append({"from": "function_call", "value": dumps(out[0] if len(out) == 1 else out)})
    return turns


def sharegpt_tools(tools: list[dict]) -> str:
    """Tool definitions as LLaMA-Factory stores them: a JSON string of bare function objects (an entry with
    more than type and function stays wrapped, so nothing is lost)."""
    return dumps([t["function"] if set(t) == {"type", "function"} else t for t in tools])


def dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False)
