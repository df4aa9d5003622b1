"""Preference data: chosen/rejected pairs and KTO's labelled examples, in the shapes users have.

| format | looks like                                                                              |
|--------|-----------------------------------------------------------------------------------------|
| pairs  | {"prompt", "chosen", "rejected"} (LLaMA-Factory, TRL): prompt a string or messages;      |
|        | chosen/rejected a string, an assistant message or a list of them; also                   |
|        | {"instruction", "input"?, "chosen", "rejected"}, {"conversations", "chosen", "rejected"}, |
|        | {"messages", "chosen", "rejected"}, OpenAI's {"input": {"messages"}, "preferred_output", |
|        | "non_preferred_output"}, TRL's implicit prompt ({"chosen": [messages], "rejected":       |
|        | [messages]} sharing all but the last turn) and HH-RLHF's text pairs                      |
|        | ({"chosen": "\\n\\nHuman: …\\n\\nAssistant: …", "rejected": …})                          |
| kto    | {"prompt", "completion", "label": true/false} (TRL), or {"messages", "label"}; label may  |
|        | also be "kto_tag" (LLaMA-Factory)                                                        |

Every shape becomes a Record whose messages end with the chosen (or labelled) answer; a pair's rejected answer
is `Record.rejected`, a KTO label `Record.label`.
"""

from __future__ import annotations

import re

from xuetu.data.record import FormatError, Record

PREF_FORMATS = ["pairs", "kto"]
ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}
HH_TURN = re.compile(r"\n\n(Human|Assistant):[ ]?")
LABEL_KEYS = ("label", "kto_tag")


def detect(obj: dict) -> str | None:
    """"pairs", "kto", or None for a record that is not preference data."""
    if "chosen" in obj and "rejected" in obj:
        return "pairs"
    if "preferred_output" in obj and "non_preferred_output" in obj:
        return "pairs"
    if any(isinstance(obj.get(k), bool) for k in LABEL_KEYS) and (
            "completion" in obj or isinstance(obj.get("messages"), list) or isinstance(obj.get("conversations"), list)):
        return "kto"
    return None


def _text(value, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise FormatError(f"{what} must be a string, got {type(value).__name__}")
    return value


def _messages(items, what: str) -> list[dict]:
    """OpenAI or ShareGPT turns -> [{"role", "content"}]."""
    if not isinstance(items, list):
        raise FormatError(f"{what} must be a list of messages")
    out = []
    for i, m in enumerate(items):
        if not isinstance(m, dict):
            raise FormatError(f"{what}[{i}] must be an object with a role and content")
        who = str(m.get("role", m.get("from", ""))).lower()
        if who not in ROLES:
            raise FormatError(f"{what}[{i}] has unknown role {who!r}")
        out.append({"role": ROLES[who], "content": _text(m.get("content", m.get("value")), f"{what}[{i}].content")})
    return out


def _answer(value, what: str) -> dict:
    """An answer given as a string, a message, or a list ending in the assistant's message."""
    if isinstance(value, str):
        return {"role": "assistant", "content": value}
    if isinstance(value, dict):
        value = [value]
    msgs = _messages(value, what)
    if not msgs or msgs[-1]["role"] != "assistant":
        raise FormatError(f"{what} must be an answer: a string or an assistant message")
    return {"role": "assistant", "content": msgs[-1]["content"]}


def _split_system(msgs: list[dict], system: str | None) -> tuple[str | None, list[dict]]:
    if msgs and msgs[0]["role"] == "system":
        return system or msgs[0]["content"], msgs[1:]
    return system, msgs


def _prompt(obj: dict) -> tuple[list[dict], str | None]:
    """The conversation before the answer, and the system prompt, from whichever key holds it."""
    system = _text(obj.get("system"), "system") or None
    if isinstance(obj.get("input"), dict) and isinstance(obj["input"].get("messages"), list):  # OpenAI
        msgs = _messages(obj["input"]["messages"], "input.messages")
    elif isinstance(obj.get("messages"), list):
        msgs = _messages(obj["messages"], "messages")
    elif isinstance(obj.get("conversations"), list):
        msgs = _messages(obj["conversations"], "conversations")
    elif "instruction" in obj:
        text = _text(obj["instruction"], "instruction")
        extra = _text(obj.get("input"), "input")
        msgs = [{"role": "user", "content": f"{text}\n{extra}" if text and extra else text or extra}]
    elif isinstance(obj.get("prompt"), list):
        msgs = _messages(obj["prompt"], "prompt")
    elif "prompt" in obj:
        msgs = [{"role": "user", "content": _text(obj["prompt"], "prompt")}]
    else:
        return [], system
    system, msgs = _split_system(msgs, system)
    return msgs, system


def _hh(text: str, what: str) -> list[dict]:
    """HH-RLHF's "\\n\\nHuman: …\\n\\nAssistant: …" transcript -> messages."""
    parts = HH_TURN.split(text)
    if len(parts) < 3 or parts[0].strip():
        raise FormatError(f"{what} is text but not an HH-RLHF transcript (\\n\\nHuman: … \\n\\nAssistant: …)")
    return [{"role": "user" if who == "Human" else "assistant", "content": body.strip()}
            for who, body in zip(parts[1::2], parts[2::2])]


def _implicit(chosen: list[dict], rejected: list[dict]) -> tuple[list[dict], dict, dict]:
    """Two whole conversations that share all but their last answers."""
    if not chosen or not rejected or chosen[-1]["role"] != "assistant" or rejected[-1]["role"] != "assistant":
        raise FormatError("chosen and rejected must each end with an assistant answer")
    if chosen[:-1] != rejected[:-1]:
        raise FormatError("chosen and rejected must share the same conversation before their last answers")
    return chosen[:-1], chosen[-1], rejected[-1]


def read_pairs(obj: dict, meta: dict) -> Record:
    prompt, system = _prompt(obj)
    if "preferred_output" in obj:
        chosen_v, rejected_v, keys = obj["preferred_output"], obj["non_preferred_output"], (
            "input", "preferred_output", "non_preferred_output")
    else:
        chosen_v, rejected_v, keys = obj["chosen"], obj["rejected"], (
            "prompt", "chosen", "rejected", "system", "messages", "conversations", "instruction", "input")
    if not prompt and isinstance(chosen_v, str) and isinstance(rejected_v, str) and HH_TURN.match(chosen_v):
        prompt, chosen, rejected = _implicit(_hh(chosen_v, "chosen"), _hh(rejected_v, "rejected"))
        meta = {**meta, "format": "pairs", "shape": "hh-rlhf"}
    elif not prompt and isinstance(chosen_v, list) and isinstance(rejected_v, list) and len(chosen_v) > 1:
        prompt, chosen, rejected = _implicit(_messages(chosen_v, "chosen"), _messages(rejected_v, "rejected"))
        system, prompt = _split_system(prompt, system)
    else:
        chosen, rejected = _answer(chosen_v, "chosen"), _answer(rejected_v, "rejected")
    if not prompt or prompt[-1]["role"] != "user":
        raise FormatError("a preference pair needs a prompt ending in a user turn (prompt, instruction, "
                          "messages or conversations)")
    extra = {k: v for k, v in obj.items() if k not in keys}
    return Record(messages=prompt + [chosen], system=system, rejected=rejected,
                  meta={**meta, **({"extra": extra} if extra else {})})


def read_kto(obj: dict, meta: dict) -> Record:
    key = next(k for k in LABEL_KEYS if isinstance(obj.get(k), bool))
    if "completion" in obj:
        prompt, system = _prompt(obj)
        msgs = prompt + [_answer(obj["completion"], "completion")]
    else:
        msgs = _messages(obj.get("messages", obj.get("conversations")), "messages")
        system, msgs = _split_system(msgs, _text(obj.get("system"), "system") or None)
    if len(msgs) < 2 or msgs[-1]["role"] != "assistant" or msgs[-2]["role"] != "user":
        raise FormatError("a KTO example needs a prompt ending in a user turn and the answer it labels")
    extra = {k: v for k, v in obj.items()
             if k not in (key, "prompt", "completion", "messages", "conversations", "system")}
    return Record(messages=msgs, system=system, label=obj[key], meta={**meta, **({"extra": extra} if extra else {})})


def _prompt_out(record: Record):
    msgs = record.messages[:-1]
    if len(msgs) == 1 and not record.system:
        return msgs[0]["content"]
    return ([{"role": "system", "content": record.system}] if record.system else []) + \
        [{"role": m["role"], "content": m["content"]} for m in msgs]


def write(record: Record, fmt: str) -> dict:
    """A preference record as pairs ({"prompt", "chosen", "rejected"}) or kto ({"prompt", "completion", "label"})."""
    extra = dict(record.meta.get("extra") or {})
    if fmt == "pairs":
        if record.rejected is None:
            raise FormatError("pairs needs a chosen and a rejected answer; this record has "
                              + ("a KTO label" if record.label is not None else "no rejected answer"))
        return {"prompt": _prompt_out(record), "chosen": record.messages[-1]["content"],
                "rejected": record.rejected["content"], **extra}
    if record.label is None and record.rejected is None:
        raise FormatError("kto needs a desirable/undesirable label or a chosen/rejected pair")
    label = True if record.label is None else record.label
    return {"prompt": _prompt_out(record), "completion": record.messages[-1]["content"], "label": label, **extra}


def to_kto(record: Record) -> list[Record]:
    """A pair as two KTO examples (chosen desirable, rejected undesirable); a KTO example as itself."""
    if record.rejected is None:
        return [record]
    return [Record(messages=record.messages, system=record.system, label=True, meta=record.meta),
            Record(messages=record.rejected_messages(), system=record.system, label=False, meta=record.meta)]
