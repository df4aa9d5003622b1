"""Instruction-data formats: detect them and convert to and from the canonical Record.

| format    | looks like                                                     |
|-----------|----------------------------------------------------------------|
| messages  | {"messages": [{"role", "content"}, ...]}  (OpenAI)             |
| sharegpt  | {"conversations": [{"from", "value"}, ...]}                    |
| alpaca    | {"instruction", "input"?, "output", "system"?, "history"?}     |
| qa        | {"question", "answer"} (also query/response, prompt/response)   |
| text      | {"text"} (also content), for pretraining                        |
"""

from __future__ import annotations

from xuetu.data.record import Record

FORMATS = ["messages", "sharegpt", "alpaca", "qa", "text"]
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "chatgpt": "assistant",
                  "bing": "assistant", "bard": "assistant", "system": "system", "tool": "tool", "function": "tool",
                  "observation": "tool", "function_call": "assistant"}
QA_KEYS = [("question", "answer"), ("query", "response"), ("prompt", "response"), ("prompt", "completion"),
           ("input", "output"), ("问题", "答案")]


class FormatError(ValueError):
    """A record no known format fits, or a field of the wrong type."""


def detect(obj) -> str:
    if not isinstance(obj, dict):
        raise FormatError(f"expected a JSON object, got {type(obj).__name__}")
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
                      "instruction/output, question/answer or text")


def _str(value, what: str) -> str:
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise FormatError(f"{what} must be a string, got {type(value).__name__}")
    return value


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
    if fmt == "messages":
        msgs = []
        for i, m in enumerate(obj["messages"]):
            if not isinstance(m, dict) or "role" not in m:
                raise FormatError(f"messages[{i}] needs a role and content")
            if m["role"] not in ("system", "user", "assistant", "tool"):
                raise FormatError(f"messages[{i}] has unknown role {m['role']!r}")
            msgs.append({"role": m["role"], "content": _str(m.get("content"), f"messages[{i}].content")})
        system, msgs = _split_system(msgs)
        extra = {k: v for k, v in obj.items() if k != "messages"}
        return Record(messages=msgs, system=system, meta={**meta, **({"extra": extra} if extra else {})})
    if fmt == "sharegpt":
        msgs = []
        for i, m in enumerate(obj["conversations"]):
            if not isinstance(m, dict):
                raise FormatError(f"conversations[{i}] must be an object")
            who = str(m.get("from", m.get("role", ""))).lower()
            if who not in SHAREGPT_ROLES:
                raise FormatError(f"conversations[{i}] has unknown speaker {who!r}")
            msgs.append({"role": SHAREGPT_ROLES[who], "content": _str(m.get("value", m.get("content")),
                                                                       f"conversations[{i}].value")})
        system, msgs = _split_system(msgs)
        system = _str(obj.get("system"), "system") or system
        extra = {k: v for k, v in obj.items() if k not in ("conversations", "system")}
        return Record(messages=msgs, system=system or None, meta={**meta, **({"extra": extra} if extra else {})})
    if fmt == "alpaca":
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
        extra = {k: v for k, v in obj.items() if k not in ("instruction", "input", "output", "response", "system", "history")}
        return Record(messages=msgs, system=_str(obj.get("system"), "system") or None,
                      meta={**meta, **({"extra": extra} if extra else {})})
    if fmt == "qa":
        q, a = next((q, a) for q, a in QA_KEYS if q in obj and a in obj)
        msgs = [{"role": "user", "content": _str(obj[q], q)}, {"role": "assistant", "content": _str(obj[a], a)}]
        extra = {k: v for k, v in obj.items() if k not in (q, a, "system")}
        return Record(messages=msgs, system=_str(obj.get("system"), "system") or None,
                      meta={**meta, **({"extra": extra} if extra else {})})
    key = "text" if isinstance(obj.get("text"), str) else "content"
    extra = {k: v for k, v in obj.items() if k != key}
    return Record(text=obj[key], meta={**meta, **({"extra": extra} if extra else {})})


def from_record(record: Record, fmt: str) -> dict:
    """The record in the given output format (extra fields of the input are kept)."""
    extra = dict(record.meta.get("extra") or {})
    if fmt == "text" or record.is_text:
        if fmt not in ("text",) and record.is_text:
            raise FormatError(f"a raw-text record cannot be written as {fmt}")
        return {"text": record.text if record.is_text else record.joined(), **extra}
    msgs = record.messages
    if fmt == "messages":
        system = [{"role": "system", "content": record.system}] if record.system else []
        return {"messages": system + msgs, **extra}
    if fmt == "sharegpt":
        back = {"user": "human", "assistant": "gpt", "tool": "observation", "system": "system"}
        out = {"conversations": [{"from": back[m["role"]], "value": m["content"]} for m in msgs], **extra}
        if record.system:
            out["system"] = record.system
        return out
    if fmt in ("alpaca", "qa"):
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
    raise FormatError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
