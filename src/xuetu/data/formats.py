"""Instruction-data formats: detect them and convert to and from the canonical Record.

| format    | looks like                                                                         |
|-----------|------------------------------------------------------------------------------------|
| messages  | {"messages": [{"role", "content"}, ...], "tools"?}  (OpenAI); assistant messages    |
|           | may carry "tool_calls", tool messages "tool_call_id"                               |
| sharegpt  | {"conversations": [{"from", "value"}, ...], "system"?, "tools"?}; LLaMA-Factory's  |
|           | tool turns: "function_call" (a call, or a list of calls, as JSON), "observation"   |
| alpaca    | {"instruction", "input"?, "output", "system"?, "history"?}                         |
| qa        | {"question", "answer"} (also query/response, prompt/response)                      |
| text      | {"text"} (also content), for pretraining                                           |
| pairs     | {"prompt", "chosen", "rejected"} and the other preference-pair shapes (data/prefs.py) |
| kto       | {"prompt", "completion", "label": bool}: KTO's unpaired examples (data/prefs.py)     |

Tools and tool calls (see xuetu.data.toolcalls) only fit messages and sharegpt: written as messages, call
arguments are JSON strings and tools a list (OpenAI's wire shape); as sharegpt, tools is a JSON string
of bare function objects (LLaMA-Factory's shape). Converting between the two loses nothing.
"""

from __future__ import annotations

from xuetu.data import prefs
from xuetu.data.record import FormatError, Record
from xuetu.data.toolcalls import (TOOL_NEEDS, dumps, link_calls, parse_call, parse_calls, parse_function_call,
                                  parse_tools, sharegpt_tools, sharegpt_turns, wire_message)

FORMATS = ["messages", "sharegpt", "alpaca", "qa", "text", *prefs.PREF_FORMATS]
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "chatgpt": "assistant",
                  "bing": "assistant", "bard": "assistant", "system": "system", "tool": "tool", "function": "tool",
                  "observation": "tool", "function_call": "assistant"}
QA_KEYS = [("question", "answer"), ("query", "response"), ("prompt", "response"), ("prompt", "completion"),
           ("input", "output"), ("问题", "答案")]


def detect(obj) -> str:
    if not isinstance(obj, dict):
        raise FormatError(f"expected a JSON object, got {type(obj).__name__}")
    if pref := prefs.detect(obj):
        return pref
    if isinstance(obj.get("messages"), list):
        return "messages"
    if isinstance(obj.get("conversations"), list):
        return "sharegpt"
    if "instruction" in obj and ("output" in obj or "response" in obj):
        return "alpaca"
    if any(q in obj and a in obj for q, a in QA_KEYS):
        return "qa"
    if isinstance(obj.get("text"), str) or isinstance(obj.get("content"), str):
        return "text"
    keys = ", ".join(sorted(obj)[:8]) or "none"
    raise FormatError(f"unrecognised record (keys: {keys}); expected messages, conversations, "
                      "instruction/output, question/answer, text, or preference data (prompt/chosen/rejected, "
                      "prompt/completion/label)")


def _str(value, what: str) -> str:
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise FormatError(f"{what} must be a string, got {type(value).__name__}")
    return value


def _result(value, where: str) -> str:
    """A tool result's content: text, or structured data kept as JSON text."""
    return dumps(value) if isinstance(value, (dict, list)) else _str(value, where)


def _extra(obj: dict, used: tuple) -> dict:
    extra = {k: v for k, v in obj.items() if k not in used}
    return {"extra": extra} if extra else {}


def _split_system(messages: list[dict]) -> tuple[str | None, list[dict]]:
    system = None
    rest = []
    for m in messages:
        if m["role"] == "system" and system is None and not rest:
            system = m["content"]
        else:
            rest.append(m)
    return system, rest


def to_record(obj, meta: dict | None = None) -> Record:
    fmt = detect(obj)
    meta = {**(meta or {}), "format": fmt}
    return _READ[fmt](obj, meta)


def _message(m, path: str) -> dict:
    if not isinstance(m, dict) or "role" not in m:
        raise FormatError(f"{path} needs a role and content")
    role = m["role"]
    if role not in ("system", "user", "assistant", "tool"):
        raise FormatError(f"{path} has unknown role {role!r}")
    if role == "tool":
        return {"role": role, "content": _result(m.get("content"), f"{path}.content"),
                "tool_call_id": m.get("tool_call_id"), "name": m.get("name")}
    msg = {"role": role, "content": _str(m.get("content"), f"{path}.content")}
    if role == "assistant":
        if m.get("tool_calls") is not None:
            calls = parse_calls(m["tool_calls"], f"{path}.tool_calls")
        elif m.get("function_call") is not None:  # OpenAI's older single-call field
            calls = [parse_call(m["function_call"], f"{path}.function_call")]
        else:
            calls = []
        if calls:
            msg["tool_calls"] = calls
    return msg


def _read_messages(obj: dict, meta: dict) -> Record:
    msgs = [_message(m, f"messages[{i}]") for i, m in enumerate(obj["messages"])]
    link_calls(msgs, [f"messages[{i}]" for i in range(len(msgs))])
    system, msgs = _split_system(msgs)
    return Record(messages=msgs, system=system, tools=parse_tools(obj.get("tools")),
                  meta={**meta, **_extra(obj, ("messages", "tools"))})


def _read_sharegpt(obj: dict, meta: dict) -> Record:
    msgs, paths = [], []
    for i, m in enumerate(obj["conversations"]):
        path = f"conversations[{i}]"
        if not isinstance(m, dict):
            raise FormatError(f"{path} must be an object")
        who = str(m.get("from", m.get("role", ""))).lower()
        if who not in SHAREGPT_ROLES:
            raise FormatError(f"{path} has unknown speaker {who!r}")
        value = m.get("value", m.get("content"))
        if who == "function_call":
            calls = parse_function_call(value, f"{path}.value")
            if msgs and msgs[-1]["role"] == "assistant" and "tool_calls" not in msgs[-1]:
                msgs[-1]["tool_calls"] = calls  # the gpt turn just before says something, then calls
                continue
            msg = {"role": "assistant", "content": "", "tool_calls": calls}
        elif SHAREGPT_ROLES[who] == "tool":
            msg = {"role": "tool", "content": _result(value, f"{path}.value"), "tool_call_id": m.get("tool_call_id"),
                   "name": m.get("name")}
        else:
            msg = {"role": SHAREGPT_ROLES[who], "content": _str(value, f"{path}.value")}
        msgs.append(msg)
        paths.append(path)
    link_calls(msgs, paths)
    system, msgs = _split_system(msgs)
    system = _str(obj.get("system"), "system") or system
    return Record(messages=msgs, system=system or None, tools=parse_tools(obj.get("tools")),
                  meta={**meta, **_extra(obj, ("conversations", "system", "tools"))})


def _read_alpaca(obj: dict, meta: dict) -> Record:
    msgs = []
    for i, pair in enumerate(obj.get("history") or []):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
            raise FormatError(f"history[{i}] must be a [question, answer] pair")
        msgs += [{"role": "user", "content": _str(pair[0], "history")},
                 {"role": "assistant", "content": _str(pair[1], "history")}]
    prompt = _str(obj["instruction"], "instruction")
    extra_input = _str(obj.get("input"), "input")
    if extra_input:
        prompt = f"{prompt}\n{extra_input}" if prompt else extra_input
    msgs += [{"role": "user", "content": prompt},
             {"role": "assistant", "content": _str(obj.get("output", obj.get("response")), "output")}]
    return Record(messages=msgs, system=_str(obj.get("system"), "system") or None,
                  meta={**meta, **_extra(obj, ("instruction", "input", "output", "response", "system", "history"))})


def _read_qa(obj: dict, meta: dict) -> Record:
    q, a = next((q, a) for q, a in QA_KEYS if q in obj and a in obj)
    msgs = [{"role": "user", "content": _str(obj[q], q)}, {"role": "assistant", "content": _str(obj[a], a)}]
    return Record(messages=msgs, system=_str(obj.get("system"), "system") or None,
                  meta={**meta, **_extra(obj, (q, a, "system"))})


def _read_text(obj: dict, meta: dict) -> Record:
    key = "text" if isinstance(obj.get("text"), str) else "content"
    return Record(text=obj[key], meta={**meta, **_extra(obj, (key,))})


_READ = {"messages": _read_messages, "sharegpt": _read_sharegpt, "alpaca": _read_alpaca, "qa": _read_qa,
         "text": _read_text, "pairs": prefs.read_pairs, "kto": prefs.read_kto}


def outputs(record: Record, fmt: str) -> list[dict]:
    """What the record becomes in fmt: one object, or two when a pair is written as KTO examples."""
    if fmt == "kto":
        return [prefs.write(r, fmt) for r in prefs.to_kto(record)]
    return [from_record(record, fmt)]


def from_record(record: Record, fmt: str) -> dict:
    """The record in the given output format (extra fields of the input are kept)."""
    if fmt not in FORMATS:
        raise FormatError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt in prefs.PREF_FORMATS:
        return prefs.write(record, fmt)
    if record.is_preference:
        kind = "a chosen/rejected pair" if record.is_pair else "a KTO example"
        raise FormatError(f"this record is preference data ({kind}), which {fmt} cannot hold: write it as "
                          f"{' or '.join(prefs.PREF_FORMATS)}")
    extra = dict(record.meta.get("extra") or {})
    if record.uses_tools and fmt not in ("messages", "sharegpt"):
        raise FormatError(f"this record has tools or tool calls, which {fmt} cannot hold: {TOOL_NEEDS}")
    if fmt == "text" or record.is_text:
        if fmt not in ("text",) and record.is_text:
            raise FormatError(f"a raw-text record cannot be written as {fmt}")
        return {"text": record.text if record.is_text else record.joined(), **extra}
    msgs = record.messages
    if fmt == "messages":
        system = [{"role": "system", "content": record.system}] if record.system else []
        out = {"messages": system + [wire_message(m) for m in msgs]}
        return {**out, **({"tools": record.tools} if record.tools else {}), **extra}
    if fmt == "sharegpt":
        out = {"conversations": sharegpt_turns(msgs), **extra}
        if record.tools:
            out["tools"] = sharegpt_tools(record.tools)
        if record.system:
            out["system"] = record.system
        return out
    return _write_pair(record, fmt, extra)


def _write_pair(record: Record, fmt: str, extra: dict) -> dict:
    """alpaca or qa."""
    msgs = record.messages
    if len(msgs) < 2 or msgs[-1]["role"] != "assistant" or msgs[-2]["role"] != "user":
        raise FormatError(f"{fmt} needs a conversation ending in a user turn and an answer")
    pairs = msgs[:-2]
    if fmt == "qa" and pairs:
        raise FormatError("qa holds one question and one answer; this conversation has more turns")
    if any(m["role"] not in ("user", "assistant") for m in pairs) or len(pairs) % 2:
        raise FormatError(f"{fmt} cannot hold this conversation's turns")
    if fmt == "qa":
        out = {"question": msgs[-2]["content"], "answer": msgs[-1]["content"], **extra}
    else:
        out = {"instruction": msgs[-2]["content"], "input": "", "output": msgs[-1]["content"], **extra}
        if pairs:
            out["history"] = [[pairs[i]["content"], pairs[i + 1]["content"]] for i in range(0, len(pairs), 2)]
    if record.system:
        out["system"] = record.system
    return out
