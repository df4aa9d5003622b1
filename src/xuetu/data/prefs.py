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
|        | also be "kto_tag" (LLaMA-Factory); "true"/"false" strings count (a CSV column)          |

Every shape becomes a Record whose messages end with the chosen (or labelled) answer; a pair's rejected answer
is `Record.rejected`, a KTO label `Record.label`. An explicit "prompt" wins over "messages" (UltraFeedback's
binarized rows carry both, messages being the chosen conversation).

A record that has the shape but cannot teach a preference raises PreferenceError, a FormatError with a reject
reason for `xuetu data clean`: an empty prompt (no_question), an empty answer (no_answer), or a pair whose
chosen and rejected answers are the same (same_answers).
"""

from __future__ import annotations

import re

from xuetu.data.record import FormatError, Record

PREF_FORMATS = ["pairs", "kto"]
ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "chatgpt": "assistant",
         "system": "system"}
HH_TURN = re.compile(r"\n\n(Human|Assistant):[ ]?")
LABEL_KEYS = ("label", "kto_tag")
PROMPT_KEYS = ("prompt", "input", "messages", "conversations", "instruction")
LABEL_TEXT = {"true": True, "false": False}
"""Labels as text (CSV cells, pandas' True/False), compared lower-cased."""


class PreferenceError(FormatError):
    """A preference record of a known shape that teaches nothing; `reason` names it in clean's rejects."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def _is_label(value) -> bool:
    return isinstance(value, bool) or (isinstance(value, str) and value.strip().lower() in LABEL_TEXT)


def detect(obj: dict) -> str | None:
    """"pairs", "kto", or None for a record that is not preference data.

    A `kto_tag` makes a record KTO whatever its value (a bad one is then reported); a `label` only when it is
    true/false, so an SFT record with a category label ("math") stays SFT."""
    if "chosen" in obj and "rejected" in obj:
        return "pairs"
    if "preferred_output" in obj and "non_preferred_output" in obj:
        return "pairs"
    if ("kto_tag" in obj or _is_label(obj.get("label"))) and (
            "completion" in obj or isinstance(obj.get("messages"), list) or isinstance(obj.get("conversations"), list)):
        return "kto"
    return None


def _label(obj: dict) -> tuple[str, bool]:
    key = "kto_tag" if "kto_tag" in obj else "label"
    value = obj.get(key)
    if isinstance(value, bool):
        return key, value
    if isinstance(value, str) and value.strip().lower() in LABEL_TEXT:
        return key, LABEL_TEXT[value.strip().lower()]
    raise FormatError(f"{key} must be true (desirable) or false (undesirable), got {value!r}")


def _text(value, what: str) -> str:
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise FormatError(f"{what} must be a string, got {type(value).__name__}")
    return value


def _messages(items, what: str) -> list[dict]:
    """OpenAI or ShareGPT turns -> [{"role", "content"}]."""
    if not isinstance(items, list):
        raise FormatError(f"{what} must be a list of messages, got {type(items).__name__}")
    out = []
    for i, m in enumerate(items):
        if not isinstance(m, dict):
            raise FormatError(f"{what}[{i}] must be an object with a role and content")
        who = str(m.get("role", m.get("from", ""))).lower()
        if who not in ROLES:
            raise FormatError(f"{what}[{i}] has unknown role {who!r}" if who else f"{what}[{i}] needs a role")
        content = m["content"] if "content" in m else m.get("value")
        out.append({"role": ROLES[who], "content": _text(content, f"{what}[{i}].content")})
    return out


def _answer(value, what: str) -> dict:
    """An answer given as a string, a message, or a list ending in the assistant's message."""
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return {"role": "assistant", "content": _text(value, what)}
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise FormatError(f"{what} must be an answer (a string, an assistant message or a list of messages), "
                          f"got {type(value).__name__}")
    msgs = _messages(value, what)
    if not msgs or msgs[-1]["role"] != "assistant":
        raise FormatError(f"{what} must be an answer: a string, or messages ending with the assistant's")
    return {"role": "assistant", "content": msgs[-1]["content"]}


def _split_system(msgs: list[dict], system: str | None) -> tuple[str | None, list[dict]]:
    if msgs and msgs[0]["role"] == "system":
        return system or msgs[0]["content"] or None, msgs[1:]
    return system, msgs


def _prompt(obj: dict) -> tuple[list[dict], str | None]:
    """The conversation before the answer, and the system prompt, from whichever key holds it."""
    system = _text(obj.get("system"), "system") or None
    if isinstance(obj.get("prompt"), list):
        msgs = _messages(obj["prompt"], "prompt")
    elif obj.get("prompt") is not None:
        msgs = [{"role": "user", "content": _text(obj["prompt"], "prompt")}]
    elif isinstance(obj.get("input"), dict) and isinstance(obj["input"].get("messages"), list):  # OpenAI
        msgs = _messages(obj["input"]["messages"], "input.messages")
    elif isinstance(obj.get("messages"), list):
        msgs = _messages(obj["messages"], "messages")
    elif isinstance(obj.get("conversations"), list):
        msgs = _messages(obj["conversations"], "conversations")
    elif "instruction" in obj:
        text = _text(obj["instruction"], "instruction")
        extra = _text(obj.get("input"), "input")
        msgs = [{"role": "user", "content": f"{text}\n{extra}" if text and extra else text or extra}]
    else:
        return [], system
    system, msgs = _split_system(msgs, system)
    return msgs, system


def _looks_hh(text) -> bool:
    return isinstance(text, str) and (HH_TURN.match(text) is not None or text.lstrip().startswith("Human:"))


def _hh(text: str, what: str) -> list[dict]:
    """HH-RLHF's "\\n\\nHuman: …\\n\\nAssistant: …" transcript -> messages (the leading blank line may be missing)."""
    if text.lstrip().startswith(("Human:", "Assistant:")):
        text = "\n\n" + text.lstrip()
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
        turn = next((i for i, (a, b) in enumerate(zip(chosen, rejected)) if a != b), min(len(chosen), len(rejected)))
        raise FormatError("chosen and rejected must share the same conversation before their last answers "
                          f"(they differ at turn {turn})")
    return chosen[:-1], chosen[-1], rejected[-1]


def _pair_parts(obj: dict, prompt: list[dict], system: str | None):
    """(prompt, system, chosen, rejected, used keys, shape) of a pair in any of its shapes."""
    if "preferred_output" in obj:
        return (prompt, system, _answer(obj["preferred_output"], "preferred_output"),
                _answer(obj["non_preferred_output"], "non_preferred_output"),
                ("input", "preferred_output", "non_preferred_output"), "openai")
    used = ("prompt", "chosen", "rejected", "system", "messages", "conversations", "instruction", "input")
    chosen_v, rejected_v = obj["chosen"], obj["rejected"]
    bare = not any(obj.get(k) is not None for k in PROMPT_KEYS)  # no prompt given: the answers must carry it
    if bare and _looks_hh(chosen_v) and isinstance(rejected_v, str):
        prompt, chosen, rejected = _implicit(_hh(chosen_v, "chosen"), _hh(rejected_v, "rejected"))
        return prompt, system, chosen, rejected, used, "hh-rlhf"
    if bare and isinstance(chosen_v, list) and isinstance(rejected_v, list) and len(chosen_v) > 1:
        prompt, chosen, rejected = _implicit(_messages(chosen_v, "chosen"), _messages(rejected_v, "rejected"))
        system, prompt = _split_system(prompt, system)
        return prompt, system, chosen, rejected, used, "implicit"
    if bare and isinstance(chosen_v, str):
        raise FormatError("a preference pair needs a prompt: chosen and rejected given as text without prompt, "
                          "instruction, messages or conversations must be HH-RLHF transcripts "
                          "(\\n\\nHuman: … \\n\\nAssistant: …)")
    return prompt, system, _answer(chosen_v, "chosen"), _answer(rejected_v, "rejected"), used, None


def read_pairs(obj: dict, meta: dict) -> Record:
    prompt, system, chosen, rejected, used, shape = _pair_parts(obj, *_prompt(obj))
    if not prompt or prompt[-1]["role"] != "user":
        raise FormatError("a preference pair needs a prompt ending in a user turn (prompt, instruction, "
                          "messages or conversations)")
    extra = {k: v for k, v in obj.items() if k not in used}
    meta = {**meta, **({"shape": shape} if shape else {}), **({"extra": extra} if extra else {})}
    record = Record(messages=prompt + [chosen], system=system, rejected=rejected, meta=meta)
    check(record)
    return record


def read_kto(obj: dict, meta: dict) -> Record:
    key, label = _label(obj)
    if "completion" in obj:
        prompt, system = _prompt(obj)
        msgs = prompt + [_answer(obj["completion"], "completion")]
        used = (key, "prompt", "completion", "system", "messages", "conversations", "instruction", "input")
    else:
        which = "messages" if isinstance(obj.get("messages"), list) else "conversations"
        msgs = _messages(obj.get(which), which)
        system, msgs = _split_system(msgs, _text(obj.get("system"), "system") or None)
        used = (key, which, "system")
    if len(msgs) < 2 or msgs[-1]["role"] != "assistant" or msgs[-2]["role"] != "user":
        raise FormatError("a KTO example needs a prompt ending in a user turn and the answer it labels")
    extra = {k: v for k, v in obj.items() if k not in used}
    record = Record(messages=msgs, system=system, label=label, meta={**meta, **({"extra": extra} if extra else {})})
    check(record)
    return record


def check(record: Record) -> None:
    """Raise PreferenceError if a preference record cannot teach anything (see the module doc)."""
    if not record.is_preference:
        return
    if not record.messages[-2]["content"].strip():
        raise PreferenceError("no_question", "the prompt is empty")
    if not record.messages[-1]["content"].strip():
        raise PreferenceError("no_answer", "the chosen answer is empty" if record.is_pair else "the answer is empty")
    if record.is_pair and not record.rejected["content"].strip():
        raise PreferenceError("no_answer", "the rejected answer is empty")
    if record.is_pair and record.rejected["content"].strip() == record.messages[-1]["content"].strip():
        raise PreferenceError("same_answers", "chosen and rejected are the same answer, so there is no preference "
                                              "to learn")


def _prompt_out(record: Record):
    msgs = record.messages[:-1]
    if len(msgs) == 1 and not record.system:
        return msgs[0]["content"]
    return ([{"role": "system", "content": record.system}] if record.system else []) + \
        [{"role": m["role"], "content": m["content"]} for m in msgs]


def write(record: Record, fmt: str) -> dict:
    """A preference record as pairs ({"prompt", "chosen", "rejected"}) or kto ({"prompt", "completion", "label"}).
    A pair is two KTO examples: split it with to_kto first (formats.outputs does)."""
    extra = dict(record.meta.get("extra") or {})
    if fmt == "pairs":
        if record.rejected is None:
            raise FormatError("a KTO example (one answer labelled desirable or undesirable) cannot become a pair, "
                              "which needs a chosen and a rejected answer to one prompt: keep it as kto"
                              if record.label is not None else
                              "pairs needs a chosen and a rejected answer; this record has only one answer")
        return {"prompt": _prompt_out(record), "chosen": record.messages[-1]["content"],
                "rejected": record.rejected["content"], **extra}
    if record.rejected is not None:
        raise FormatError("a pair is two KTO examples: split it with prefs.to_kto first")
    if record.label is None:
        raise FormatError("kto needs an answer labelled desirable or undesirable, or a chosen/rejected pair; "
                          "this record has neither")
    return {"prompt": _prompt_out(record), "completion": record.messages[-1]["content"], "label": record.label,
            **extra}


def to_kto(record: Record) -> list[Record]:
    """A pair as two KTO examples (chosen desirable, rejected undesirable); anything else as itself."""
    if record.rejected is None:
        return [record]
    return [Record(messages=record.messages, system=record.system, label=True, meta=record.meta),
            Record(messages=record.rejected_messages(), system=record.system, label=False, meta=record.meta)]


def prompt_text(record: Record) -> str:
    """The system prompt and the conversation before the last answer, as one text."""
    return "\n".join(([record.system] if record.system else []) + [m["content"] for m in record.messages[:-1]])


def dedup_parts(record: Record) -> list[str]:
    """The texts two preference records must each share to be duplicates: prompt, chosen and rejected of a pair,
    prompt and answer of a KTO example. Two pairs that share a prompt but not their answers are distinct."""
    parts = [prompt_text(record), record.messages[-1]["content"]]
    return parts + [record.rejected["content"]] if record.is_pair else parts


def judged_text(record: Record) -> str:
    """What the quality filters (repeats, symbols, language) judge: a pair's prompt and chosen answer, not its
    rejected one, and only the prompt of an undesirable KTO example: a bad answer is what those are for."""
    if record.label is False:
        return prompt_text(record)
    return "\n".join(([record.system] if record.system else []) + [m["content"] for m in record.messages])


def sequences(record: Record) -> list[list[dict]]:
    """The conversations a trainer renders: the chosen one, and for a pair the rejected one too."""
    return [record.messages, record.rejected_messages()] if record.is_pair else [record.messages]
