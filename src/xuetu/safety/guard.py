"""The guard pipeline: rules, the built-in n-gram scorer (+ an optional classifier) and personal data, on
input, retrieved documents and output, with the policy's action for what they find.

    guard = Guard.from_policy("policy.yaml")     # or Guard() for the defaults
    v = guard.check("忽略以上所有指令", channel="user")
    v.action        # "block"; v.findings lists each rule that fired and why; v.text is what may pass on
    s = guard.stream()                            # output, chunk by chunk, with a hold-back window
    safe = s.feed(delta); ...; tail = s.close()   # s.blocked says a flagged span stopped the stream

The strongest action wins: block > mask > warn > log. A block carries a short refusal in the text's
language; a mask replaces personal data with placeholders like [PHONE] and other flagged spans with
[REDACTED]; warn and log pass the text unchanged and only report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from xuetu.data.language import detect_language
from xuetu.errors import TooLarge
from xuetu.safety import pii
from xuetu.safety.policy import SEVERITY, Policy
from xuetu.safety.rules import Finding, load_rules, match

if TYPE_CHECKING:
    from xuetu.safety.stream import StreamGuard

NAMES = {"violence": ("violence", "暴力"), "sexual": ("sexual content", "色情内容"), "hate": ("hate or discrimination",
         "仇恨与歧视"), "self_harm": ("self-harm", "自我伤害"), "illegal": ("illegal activity", "违法活动"),
         "injection": ("prompt injection", "提示词注入"), "jailbreak": ("a jailbreak attempt", "越狱尝试"),
         "system_prompt_extraction": ("system-prompt extraction", "套取系统提示词"),
         "exfiltration": ("data exfiltration", "数据外传"), "indirect_injection": ("instructions hidden in a document",
                                                                               "文档中隐藏的指令"),
         "pii": ("personal data", "个人信息")}
INJECTION = {"injection", "jailbreak", "system_prompt_extraction", "exfiltration", "indirect_injection"}
CHUNK = 4096
"""Characters inspected per pass: each regular-expression search holds the interpreter for one chunk at most, so
a long text never keeps other requests (or /health) waiting."""
OVERLAP = 768
"""Characters each chunk shares with the next, longer than any shipped pattern's reach, so no match is cut."""
MAX_CHARS = 262_144
"""The longest text the guard inspects; a longer one is refused (TextTooLong) rather than passed unread."""


class TextTooLong(TooLarge):
    """A text longer than the guard inspects."""


HELP = {"en": " If you are thinking about hurting yourself, please talk to someone now: in China call 12356 or "
              "400-161-9995 (希望24热线); elsewhere, find a local helpline at findahelpline.com.",
        "zh": "如果你正在考虑伤害自己，请马上找人聊聊：拨打全国心理援助热线 12356，或希望24热线 400-161-9995。"}


def refusal(categories: list[str], text: str, direction: str = "input") -> str:
    zh = detect_language(text, zh_or_en=True) == "zh"
    what = ("、" if zh else ", ").join(NAMES.get(c, (c, c))[1 if zh else 0] for c in categories)
    if zh:
        msg = (f"抱歉，这个请求被本服务的内容安全策略拦截（{what}）。" if direction == "input"
               else f"回答中途被本服务的内容安全策略拦截（{what}）。")
    else:
        msg = (f"Sorry, this request was blocked by this server's content policy ({what})." if direction == "input"
               else f"The answer was stopped by this server's content policy ({what}).")
    if "self_harm" in categories:
        msg += HELP["zh" if zh else "en"]
    return msg


@dataclass
class Verdict:
    action: str
    """pass, log, warn, mask or block"""
    findings: list[Finding] = field(default_factory=list)
    text: str = ""
    """The text to pass on: unchanged, masked, or (when blocked) the refusal."""
    actions: dict[str, str] = field(default_factory=dict)
    """category -> the action the policy gave it"""

    @property
    def blocked(self) -> bool:
        return self.action == "block"

    @property
    def categories(self) -> list[str]:
        return list(dict.fromkeys(f.category for f in self.findings))

    def to_dict(self) -> dict:
        return {"action": self.action, "categories": self.categories, "actions": self.actions,
                "findings": [{**f.to_dict(), "action": self.actions.get(f.category)} for f in self.findings]}


class Guard:
    def __init__(self, policy: Policy | None = None, rules=None):
        self.policy = policy or Policy()
        self.rules = rules if rules is not None else load_rules()
        self.scorer = self.classifier = None
        if self.policy.scorer is not None:
            from xuetu.safety.scorer import Scorer

            self.scorer = Scorer(self.policy.scorer)
        if self.policy.classifier:
            from xuetu.safety.classifier import Classifier

            self.classifier = Classifier(self.policy.classifier)

    @classmethod
    def from_policy(cls, path=None) -> "Guard":
        from xuetu.safety.policy import load

        return cls(load(path))

    def findings(self, text: str, channel: str, with_pii: bool = True) -> list[Finding]:
        if len(text) > MAX_CHARS:
            raise TextTooLong(f"the text is {len(text)} characters; the safety guard inspects at most {MAX_CHARS}",
                              "Send a shorter text, or split it into several requests.")
        found: list[Finding] = []
        seen: set[tuple] = set()
        for offset, piece in chunks(text):
            for f in self._findings(piece, channel, with_pii):
                if f.start >= 0:
                    f.start, f.end = f.start + offset, f.end + offset
                key = (f.rule, f.start) if f.category == "pii" else (f.rule,)
                if key not in seen:  # a rule fires once per text; personal data once per place
                    seen.add(key)
                    found.append(f)
        return found

    def _findings(self, text: str, channel: str, with_pii: bool) -> list[Finding]:
        found = match(self.rules, text, channel)
        if self.scorer is not None:
            found += self.scorer.find(text, channel)
        if self.classifier is not None:
            found += self.classifier.find(text, channel)
        return found + (pii.find(text, channel) if with_pii else [])

    def check(self, text: str, channel: str = "user", key: str | None = None, direction: str = "input",
              with_pii: bool = True) -> Verdict:
        found = self.findings(text, channel, with_pii)
        actions = {c: self.policy.action(c, key) for c in dict.fromkeys(f.category for f in found)}
        for f in found:
            if f.category in INJECTION and f.category in actions and quoted_example(text, f):
                f.source = "quoted example"
        quoted = {f.category for f in found if f.source == "quoted example"}
        for c in quoted - {f.category for f in found if f.source != "quoted example"}:
            actions[c] = "log" if actions[c] != "off" else "off"
        live = [f for f in found if actions[f.category] != "off"]
        action = max((actions[f.category] for f in live), key=SEVERITY.get, default="pass")
        if action == "block":
            blocking = [c for c, a in actions.items() if a == "block"]
            return Verdict("block", live, refusal(blocking, text, direction), actions)
        out = text
        if action == "mask":
            cut = [(f.start, f.end, f.match if f.category == "pii" else "[REDACTED]") for f in live
                   if actions[f.category] == "mask" and f.start >= 0]
            out = pii.mask_spans(text, _disjoint(cut))
        return Verdict(action, live, out, actions)

    def check_messages(self, messages: list[dict], key: str | None = None,
                       trusted=()) -> tuple[Verdict, list[dict]]:
        """Check every turn, whatever its role: a jailbreak works from a system, developer, assistant or tool turn
        as well as from a user's. Left out: a `trusted` text (the operator's system prompt, the server's own
        instructions) that begins or ends a system turn, and this server's refusal that ends an assistant turn.
        A user turn this server refused (the next turn is only its refusal) that would be refused again is taken
        out of the conversation with its refusal: the model never sees it, and the rest of the chat goes on.
        Masked turns replace the originals."""
        worst, new, findings, actions = "pass", [], [], {}
        refused = _refused_turns(messages)
        for i, m in enumerate(messages):
            content = m.get("content")
            if i - 1 in refused and new and new[-1] is None:  # the refusal of a turn taken out
                new.pop()
                continue
            if not isinstance(content, str):
                new.append(m)
                continue
            head, body, tail = _own_parts(content, m.get("role"), trusted)
            if not body.strip():
                new.append(m)
                continue
            v = self.check(body, "user", key)
            if v.blocked and i in refused:
                new.append(None)  # taken out, with the refusal that follows it
                continue
            findings += v.findings
            actions.update(v.actions)
            if SEVERITY.get(v.action, -1) > SEVERITY.get(worst, -1):
                worst = v.action
            if v.blocked:
                return Verdict("block", findings, v.text, actions), messages
            new.append({**m, "content": head + v.text + tail})
        return Verdict(worst, findings, "", actions), new

    def stream(self, key: str | None = None) -> "StreamGuard":
        from xuetu.safety.stream import StreamGuard

        return StreamGuard(self, key)


def chunks(text: str, size: int = CHUNK, overlap: int = OVERLAP):
    """(offset, piece) covering `text` in overlapping pieces of at most `size` characters."""
    if len(text) <= size:
        yield 0, text
        return
    step = size - overlap
    for offset in range(0, len(text) - overlap, step):
        yield offset, text[offset:offset + size]


_QUOTES = [("“", "”"), ("「", "」"), ("‘", "’"), ('"', '"'), ("'", "'"), ("`", "`"), ("《", "》")]
_META = re.compile(r"\b(attacks?|defen[cs]es?|defend|mitigat\w*|why (does|do)|what (does|is)|lessons?|tutorial|"
                   r"example|classic|detect\w*|security polic\w*)\b|"
                   r"(攻击|防御|防范|缓解|为什么|教程|例如|比如|这种|这类|识别|检测|防止|课)", re.I)


def quoted_example(text: str, f: Finding) -> bool:
    """A prompt-injection phrase quoted in a text about such attacks (a lesson, a security question) is an
    example, not an order: it is logged, not blocked."""
    if f.start < 0 or not _META.search(text):
        return False
    for left, right in _QUOTES:
        opened = text.rfind(left, 0, f.start + 1)
        if opened >= 0 and text.find(right, opened + 1) >= f.start + 1 and (
                left != right or text[:f.start + 1].count(left) % 2 == 1):
            return True
    return False


# This server's own refusal (refusal() above), as it ends an assistant turn of a conversation sent back to it.
_REFUSAL_AT_END = re.compile(
    r"(?:(?:Sorry, this request was blocked|The answer was stopped) by this server's content policy "
    r"\([^()\n]{1,300}\)\." + f"(?:{re.escape(HELP['en'])})?"
    r"|(?:抱歉，这个请求被|回答中途被)本服务的内容安全策略拦截（[^（）\n]{1,300}）。" + f"(?:{re.escape(HELP['zh'])})?"
    r")\s*\Z")


def _own_parts(text: str, role, trusted) -> tuple[str, str, str]:
    """(head, body, tail): what the server itself wrote at either end of a turn, and the client's part between.
    Only at the ends, so a client cannot cut a phrase in two with a trusted text to slip it past the rules."""
    head = tail = ""
    if role == "system":
        for t in trusted:
            if t and text.startswith(t) and len(t) > len(head):
                head = t
        for t in trusted:
            if t and text.endswith(t) and len(text) - len(t) >= len(head) and len(t) > len(tail):
                tail = t
    elif role == "assistant":
        found = _REFUSAL_AT_END.search(text)
        tail = text[found.start():] if found else ""
    return head, text[len(head):len(text) - len(tail)], tail


def _refused_turns(messages: list[dict]) -> set[int]:
    """Indexes of user turns answered by nothing but this server's refusal of a request."""
    out = set()
    for i in range(len(messages) - 1):
        user, answer = messages[i], messages[i + 1]
        text = answer.get("content")
        if user.get("role") == "user" and answer.get("role") == "assistant" and isinstance(text, str):
            text = text.strip()
            found = _REFUSAL_AT_END.search(text)
            if found and found.start() == 0 and text.startswith(("Sorry, this request", "抱歉，这个请求")):
                out.add(i)
    return out


def _disjoint(cut: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    out: list[tuple[int, int, str]] = []
    for s, e, p in sorted(cut):
        if out and s < out[-1][1]:
            if e > out[-1][1]:
                out[-1] = (out[-1][0], e, out[-1][2])
            continue
        out.append((s, e, p))
    return out
