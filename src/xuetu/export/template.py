"""A Jinja chat template read as role wrappers, and written as an Ollama (Go text/template) TEMPLATE.

Most chat templates wrap each message the same way: `head`, then per message `prefix[role] + content
+ suffix[role]`, then the generation prompt. We find those strings by rendering the template with
sentinel contents, and check that rebuilding several conversations from them gives back, byte for
byte, what the Jinja template renders. A template we cannot read this way is refused with the
conversation where it differs, rather than shipped as a Modelfile that prompts the model wrongly.
A default system prompt the template adds on its own (SmolLM2 does) becomes the Modelfile's SYSTEM.
"""

from __future__ import annotations

from dataclasses import dataclass

from xuetu.errors import XuetuError

ROLES = ("system", "user", "assistant")
S = {"system": "\x01SYS\x01", "user": "\x01USR\x01", "assistant": "\x01AST\x01"}
CHECKS = [
    [{"role": "user", "content": "Hi"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is LoRA?"}],
    [{"role": "user", "content": "你好"}, {"role": "assistant", "content": "你好！有什么可以帮你？"},
     {"role": "user", "content": "讲个笑话"}],
    [{"role": "system", "content": "You are a tutor."}, {"role": "user", "content": "2+2?"},
     {"role": "assistant", "content": "4"}, {"role": "user", "content": "And 3+3?"}],
]


@dataclass
class Wrappers:
    head: str
    prefix: dict[str, str]
    suffix: dict[str, str]
    generation: str
    default_system: str | None

    def render(self, messages: list[dict]) -> str:
        """What the Go template renders (Ollama puts SYSTEM in front when no system message is given)."""
        if self.default_system is not None and (not messages or messages[0]["role"] != "system"):
            messages = [{"role": "system", "content": self.default_system}, *messages]
        body = "".join(self.prefix[m["role"]] + m["content"] + self.suffix[m["role"]] for m in messages)
        return self.head + body + self.generation


def _between(text: str, a: str, b: str) -> str:
    return text[text.index(a) + len(a):text.index(b)]


def read_wrappers(render) -> Wrappers:
    """`render(messages, add_generation_prompt)` is the source tokenizer's apply_chat_template (as text)."""
    try:
        one_user = render([{"role": "user", "content": S["user"]}], False)
        pair = render([{"role": "user", "content": S["user"]}, {"role": "assistant", "content": S["assistant"]}], False)
        three = render([{"role": "user", "content": S["user"]}, {"role": "assistant", "content": S["assistant"]},
                        {"role": "user", "content": S["user"] + "2"}], False)
        with_sys = render([{"role": "system", "content": S["system"]}, {"role": "user", "content": S["user"]}], False)
        gen = render([{"role": "user", "content": S["user"]}], True)
    except Exception as e:  # a template that raises on an ordinary conversation
        raise XuetuError(f"the chat template fails on a plain conversation: {e}") from None
    suffix = {"user": one_user.split(S["user"], 1)[1], "assistant": pair.split(S["assistant"], 1)[1]}
    between_ua = _between(pair, S["user"], S["assistant"])
    between_au = _between(three, S["assistant"], S["user"] + "2")
    if not between_ua.startswith(suffix["user"]) or not between_au.startswith(suffix["assistant"]):
        raise XuetuError("the chat template does not wrap each message the same way",
                         "Export with --format gguf (the GGUF keeps the Jinja template) instead of ollama.")
    prefix = {"user": between_au[len(suffix["assistant"]):], "assistant": between_ua[len(suffix["user"]):]}
    before_user = one_user.split(S["user"], 1)[0]
    if not before_user.endswith(prefix["user"]):
        raise XuetuError("the chat template's first message is wrapped differently from the others",
                         "Export with --format gguf instead of ollama.")
    sys_before, sys_rest = with_sys.split(S["system"], 1)
    between_su = sys_rest.split(S["user"], 1)[0]
    suffix["system"] = between_su[:len(between_su) - len(prefix["user"])] if between_su.endswith(prefix["user"]) else ""
    prefix["system"] = prefix["user"].replace("user", "system", 1)
    if not sys_before.endswith(prefix["system"]):
        raise XuetuError("the chat template's system message is wrapped unlike the others",
                         "Export with --format gguf instead of ollama.")
    head = sys_before[:len(sys_before) - len(prefix["system"])]
    default_system = None
    implied = before_user[:len(before_user) - len(prefix["user"])]
    if implied != head:  # the template adds a system message of its own when none is given
        inner = implied[len(head):]
        if inner.startswith(prefix["system"]) and inner.endswith(suffix["system"]):
            default_system = inner[len(prefix["system"]):len(inner) - len(suffix["system"])]
        else:
            raise XuetuError("the chat template adds text before the first user message that is not a system message",
                             "Export with --format gguf instead of ollama.")
    generation = gen[len(one_user):] if gen.startswith(one_user) else None
    if generation is None:
        raise XuetuError("the chat template's generation prompt is not a plain addition at the end",
                         "Export with --format gguf instead of ollama.")
    w = Wrappers(head, prefix, suffix, generation, default_system)
    for conv in CHECKS:
        want, got = render(conv, True), w.render(conv)
        if want != got:
            at = next((i for i, (a, b) in enumerate(zip(want, got)) if a != b), min(len(want), len(got)))
            raise XuetuError(f"the Ollama template would prompt the model differently at character {at}: "
                             f"{want[max(0, at - 20):at + 20]!r} vs {got[max(0, at - 20):at + 20]!r}",
                             "Export with --format gguf (the GGUF keeps the Jinja template) instead of ollama.")
    return w


def _lit(text: str) -> str:
    """Literal text in a Go template; `{{` would start an action, so such text goes in as a string."""
    if "{{" not in text and "}}" not in text:
        return text
    import json

    return "{{ " + json.dumps(text) + " }}"


def go_template(w: Wrappers) -> str:
    """The Ollama TEMPLATE. No trim markers: every newline of the wrappers is kept exactly."""
    branches = "".join(
        ("{{ if" if i == 0 else "{{ else if") + f' eq .Role "{role}" }}}}' + _lit(w.prefix[role]) + "{{ .Content }}"
        + _lit(w.suffix[role]) for i, role in enumerate(ROLES))
    return _lit(w.head) + "{{ range .Messages }}" + branches + "{{ end }}{{ end }}" + _lit(w.generation)


def stop_strings(w: Wrappers, special_tokens: list[str]) -> list[str]:
    """Special tokens that end an answer or start the next turn: the Modelfile's PARAMETER stop."""
    around = w.suffix["assistant"] + w.prefix["user"] + w.prefix["assistant"]
    return [t for t in special_tokens if t and t in around]
