"""Ollama Modelfiles: written next to exported GGUF files, and read back to build a model from one.

    FROM ./model.gguf          the weights (a GGUF path relative to the Modelfile, or a model name)
    ADAPTER ./adapter.gguf     a LoRA adapter in GGUF over FROM
    TEMPLATE \"\"\"...\"\"\"         the prompt in Go template syntax
    SYSTEM \"\"\"...\"\"\"           the default system prompt
    PARAMETER stop "<|im_end|>"  (repeatable) and other sampling parameters
    MESSAGE user "..."         example turns; LICENSE, REQUIRES: kept as given

The syntax is Ollama's (docs/modelfile.md in the Ollama repository): one instruction per line,
case-insensitive names, `#` comments, values in quotes or triple quotes for several lines.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from xuetu.errors import XuetuError

INSTRUCTIONS = ("FROM", "ADAPTER", "TEMPLATE", "SYSTEM", "PARAMETER", "MESSAGE", "LICENSE", "REQUIRES")
# Ollama parameter -> (xuetu GenerateOptions field, type)
PARAMETERS = {"temperature": ("temperature", float), "top_p": ("top_p", float), "top_k": ("top_k", int),
              "repeat_penalty": ("repeat_penalty", float), "num_predict": ("max_tokens", int), "seed": ("seed", int),
              "stop": ("stop", str), "num_ctx": ("num_ctx", int), "min_p": ("min_p", float),
              "repeat_last_n": ("repeat_last_n", int)}


@dataclass
class Modelfile:
    from_: str = ""
    adapters: list[str] = field(default_factory=list)
    template: str | None = None
    system: str | None = None
    parameters: dict = field(default_factory=dict)
    messages: list[dict] = field(default_factory=list)
    license: list[str] = field(default_factory=list)

    def text(self, comment: str = "") -> str:
        lines = [f"# {line}" for line in comment.splitlines()] if comment else []
        lines.append(f"FROM {self.from_}")
        lines += [f"ADAPTER {a}" for a in self.adapters]
        if self.template is not None:
            lines.append(f'TEMPLATE {_quote(self.template)}')
        if self.system is not None:
            lines.append(f'SYSTEM {_quote(self.system)}')
        for key, value in self.parameters.items():
            for v in value if isinstance(value, list) else [value]:
                lines.append(f"PARAMETER {key} {json.dumps(v, ensure_ascii=False) if isinstance(v, str) else v}")
        lines += [f"MESSAGE {m['role']} {_quote(m['content'])}" for m in self.messages]
        lines += [f"LICENSE {_quote(x)}" for x in self.license]
        return "\n".join(lines) + "\n"

    def params(self) -> dict:
        """PARAMETER values as xuetu's generation parameters (names that xuetu has no use for are dropped)."""
        out = {}
        for key, value in self.parameters.items():
            name, _ = PARAMETERS[key]
            if name in ("num_ctx", "min_p", "repeat_last_n"):
                continue
            out[name] = value
        return out


def _quote(text: str) -> str:
    if '"""' in text:
        raise XuetuError('a Modelfile value cannot contain """', "Remove the triple quotes from the template or system.")
    return f'"""{text}"""' if ("\n" in text or '"' in text) else json.dumps(text, ensure_ascii=False)


_TRIPLE = re.compile(r'"""(.*?)"""', re.S)


def parse(text: str, where: str = "Modelfile") -> Modelfile:
    """Read a Modelfile; errors name the line and say what was expected."""
    mf = Modelfile()
    i, lines = 0, text.splitlines()
    while i < len(lines):
        line, lineno = lines[i].strip(), i + 1
        i += 1
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        command = word.upper()
        if command not in INSTRUCTIONS:
            raise XuetuError(f"{where} line {lineno}: unknown instruction {word!r}",
                             f"A Modelfile line starts with one of: {', '.join(INSTRUCTIONS)}.")
        rest = rest.strip()
        if rest.startswith('"""'):  # a value over several lines
            block = rest
            while block.count('"""') < 2:
                if i >= len(lines):
                    raise XuetuError(f"{where} line {lineno}: the \"\"\" opened here is never closed")
                block += "\n" + lines[i]
                i += 1
            m = _TRIPLE.match(block)
            if m is None or block[m.end():].strip():
                raise XuetuError(f"{where} line {lineno}: text after the closing \"\"\"")
            value = m.group(1)
        else:
            value = rest
        if command == "PARAMETER":
            _parameter(mf, value, where, lineno)
            continue
        if command == "MESSAGE":
            role, _, content = value.partition(" ")
            if role not in ("system", "user", "assistant"):
                raise XuetuError(f"{where} line {lineno}: MESSAGE role must be system, user or assistant, got {role!r}")
            mf.messages.append({"role": role, "content": _unquote(content.strip())})
            continue
        if not value:
            raise XuetuError(f"{where} line {lineno}: {command} needs a value")
        value = _unquote(value) if not rest.startswith('"""') else value
        if command == "FROM":
            mf.from_ = value
        elif command == "ADAPTER":
            mf.adapters.append(value)
        elif command == "TEMPLATE":
            mf.template = value
        elif command == "SYSTEM":
            mf.system = value
        elif command == "LICENSE":
            mf.license.append(value)
    if not mf.from_:
        raise XuetuError(f"{where} has no FROM line", "Start it with `FROM ./model.gguf` or `FROM NAME`.")
    return mf


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value[1:-1]
    return value


def _parameter(mf: Modelfile, value: str, where: str, lineno: int) -> None:
    try:
        key, raw = shlex.split(value, posix=True) if '"' in value else value.split(None, 1)
    except ValueError:
        raise XuetuError(f"{where} line {lineno}: PARAMETER needs a name and a value",
                         "For example: PARAMETER temperature 0.7") from None
    key = key.lower()
    if key not in PARAMETERS:
        raise XuetuError(f"{where} line {lineno}: unknown parameter {key!r}",
                         f"Known: {', '.join(sorted(PARAMETERS))}.")
    kind = PARAMETERS[key][1]
    try:
        parsed = kind(raw)
    except ValueError:
        raise XuetuError(f"{where} line {lineno}: {key} must be {'an integer' if kind is int else 'a number'}, "
                         f"got {raw!r}") from None
    if key == "stop":
        mf.parameters.setdefault("stop", []).append(parsed)
    else:
        mf.parameters[key] = parsed


def read(path: Path) -> Modelfile:
    path = Path(path)
    if path.is_dir():
        path = path / "Modelfile"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise XuetuError(f"cannot read {path}: {e}",
                         "Give the path of a Modelfile (or the folder holding one).") from None
    return parse(text, where=str(path))
