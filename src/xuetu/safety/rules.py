"""Rules: lexicons and patterns per category, in Chinese and English, shipped in rules/*.yaml and extended
by the user's own files in XUETU_HOME/safety/rules/*.yaml (same format; a user rule with a shipped id
replaces it, a new category is simply added).

    category: violence
    kind: moderation            # moderation (input and output) or injection
    channels: [user, document]  # where the category's rules apply; default from the kind
    rules:
      - id: violence.weapons
        why: "asks how to make a weapon"
        en: ['regex', ...]      # matched against normalised text (see normalize.py)
        zh: ['regex', ...]
        unless: ['regex', ...]  # optional: a match inside text that also matches these is not a finding
    lexicon: [word, 词, ...]  # optional, at the top: on model output, the rules run only if one of them appears

Text is checked in several views (as written, de-obfuscated, letters joined), so "I g n o r e" and
"ｉｇｎｏｒｅ" match what "ignore" matches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from xuetu.errors import XuetuError
from xuetu.safety.normalize import views

SHIPPED = Path(__file__).with_name("rules")
_LATIN = re.compile(r"[A-Za-z]")
_HAN = re.compile(r"[\u3400-\u9fff]")
_WORDISH = re.compile(r"[a-z0-9]")
CHANNELS = ("user", "document", "output")
DEFAULT_CHANNELS = {"moderation": ["user", "document", "output"], "injection": ["user", "document"]}


@dataclass
class Rule:
    id: str
    category: str
    kind: str
    why: str
    patterns: list[re.Pattern]
    """en patterns: tried only when the text has Latin letters"""
    unless: list[re.Pattern] = field(default_factory=list)
    channels: tuple[str, ...] = ("user", "document", "output")
    lexicon: tuple[str, ...] | None = None
    """The category's words (lower case): on model output its rules run only when one appears in the text
    (see Lexicons), so streamed checks stay cheap"""
    zh: list[re.Pattern] = field(default_factory=list)
    """zh patterns: tried only when the text has Chinese characters (most answers are in one language)"""
    any_: list[re.Pattern] = field(default_factory=list)
    """any patterns: always tried (e.g. pinyin, symbols)"""


@dataclass
class Finding:
    category: str
    rule: str
    why: str
    match: str
    """The text that matched (PII masked before it is shown or logged)."""
    channel: str
    start: int = -1
    """Where it matched in the text as written (-1 when only an obfuscation-undone view matched)."""
    end: int = -1
    source: str = "rules"

    def to_dict(self) -> dict:
        return {"category": self.category, "rule": self.rule, "why": self.why, "match": self.match,
                "channel": self.channel, "source": self.source}


class Lexicons:
    """Which of several lexicons have a word in a text, in one pass: a word that begins with a letter or digit
    must start a word there ("od" is in "overdose", not in "model"); any other word (Chinese, symbols) matches
    anywhere. Candidate positions are found by one character-class scan, then looked up by length in a dict,
    so the cost hardly grows with the lexicons' size. Search lower-cased text."""

    def __init__(self, lexicons: tuple[tuple[str, ...], ...]):
        self.words: dict[str, set[tuple[str, ...]]] = {}
        self.lengths: dict[str, list[int]] = {}  # first character -> the lengths of the words it starts
        for lex in lexicons:
            for w in lex:
                self.words.setdefault(w, set()).add(lex)
        for w in self.words:
            self.lengths.setdefault(w[0], []).append(len(w))
        latin = "".join(sorted(c for c in self.lengths if _WORDISH.match(c)))
        other = "".join(sorted(c for c in self.lengths if not _WORDISH.match(c)))
        parts = [rf"(?<![a-z0-9])[{re.escape(latin)}]"] if latin else []
        parts += [f"[{re.escape(other)}]"] if other else []
        self.starts = re.compile("|".join(parts) or "(?!)")
        self.lengths = {c: sorted(set(n)) for c, n in self.lengths.items()}

    def hits(self, lowered: str) -> set[tuple[str, ...]]:
        out: set[tuple[str, ...]] = set()
        words, lengths = self.words, self.lengths
        for m in self.starts.finditer(lowered):
            i = m.start()
            for n in lengths[lowered[i]]:
                found = words.get(lowered[i:i + n])
                if found:
                    out |= found
        return out


_INDEX: dict[int, tuple[list, Lexicons]] = {}


def _index(rules: list[Rule]) -> Lexicons:
    """The lexicons of a rule list, indexed once per list (a guard keeps its list for good)."""
    got = _INDEX.get(id(rules))
    if got is None or got[0] is not rules:
        if len(_INDEX) > 16:
            _INDEX.clear()
        got = _INDEX[id(rules)] = (rules, Lexicons(tuple(dict.fromkeys(r.lexicon for r in rules if r.lexicon))))
    return got[1]


def user_dir() -> Path:
    from xuetu.home import xuetu_home

    return xuetu_home() / "safety" / "rules"


def _compile(pattern: str, where: str) -> re.Pattern:
    try:
        return re.compile(pattern, re.I)
    except re.error as e:
        raise XuetuError(f"{where}: bad pattern {pattern!r}: {e}", "Fix the regular expression.") from None


def load_file(path: Path) -> list[Rule]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise XuetuError(f"cannot read the safety rules {path}: {e}", "Fix the YAML, or remove the file.") from None
    if not isinstance(data, dict) or not data.get("category") or not isinstance(data.get("rules"), list):
        raise XuetuError(f"{path} is not a rules file", "It needs `category:` and a list of `rules:`.")
    kind = data.get("kind", "moderation")
    if kind not in DEFAULT_CHANNELS:
        raise XuetuError(f"{path}: kind must be moderation or injection, got {kind!r}")
    channels = tuple(data.get("channels") or DEFAULT_CHANNELS[kind])
    if not set(channels) <= set(CHANNELS):
        raise XuetuError(f"{path}: channels must be among {', '.join(CHANNELS)}, got {list(channels)}")
    lex = data.get("lexicon")
    lexicon = None
    if lex is not None:
        if not isinstance(lex, list) or not lex or not all(isinstance(w, str) and w for w in lex):
            raise XuetuError(f"{path}: lexicon must be a list of the category's words (plain text, no patterns)")
        lexicon = tuple(w.lower() for w in lex)
    rules = []
    for i, r in enumerate(data["rules"]):
        where = f"{path.name} rule {i + 1}"
        if not isinstance(r, dict) or not r.get("id"):
            raise XuetuError(f"{where} needs an id")
        pats = [p for lang in ("en", "zh", "any") for p in (r.get(lang) or [])]
        if not pats or not all(isinstance(p, str) for p in pats):
            raise XuetuError(f"{where} ({r['id']}) needs patterns under en:, zh: or any:")
        rules.append(Rule(id=str(r["id"]), category=str(data["category"]), kind=kind, why=str(r.get("why", "")),
                          patterns=[_compile(p, where) for p in r.get("en") or []],
                          unless=[_compile(p, where) for p in r.get("unless") or []], channels=channels,
                          zh=[_compile(p, where) for p in r.get("zh") or []], lexicon=lexicon,
                          any_=[_compile(p, where) for p in r.get("any") or []]))
    return rules


def load_rules(extra_dirs: list[Path] | None = None) -> list[Rule]:
    by_id: dict[str, Rule] = {}
    folders = [SHIPPED, *([user_dir()] if user_dir().is_dir() else []), *(extra_dirs or [])]
    for folder in folders:
        for path in sorted(Path(folder).glob("*.y*ml")):
            for rule in load_file(path):
                by_id[rule.id] = rule  # later folders (the user's) replace shipped rules of the same id
    return list(by_id.values())


def match(rules: list[Rule], text: str, channel: str) -> list[Finding]:
    """Every rule that fires on `text` in `channel`, one finding per rule."""
    found = []
    seen = views(text)
    latin = [bool(_LATIN.search(v)) for v in seen]
    han = [bool(_HAN.search(v)) for v in seen]
    hits: set | None = None  # on output: the lexicons with a word in some view
    for rule in rules:
        if channel not in rule.channels:
            continue
        if channel == "output" and rule.lexicon is not None:
            if hits is None:
                hits = set().union(*(_index(rules).hits(v.lower()) for v in seen))
            if rule.lexicon not in hits:
                continue
        for i, view in enumerate(seen):
            pats = rule.any_ + (rule.patterns if latin[i] else []) + (rule.zh if han[i] else [])
            hit = next((m for p in pats if (m := p.search(view))), None)
            if hit is None:
                continue
            if rule.unless and any(u.search(view) for u in rule.unless):
                break
            start, end = (hit.start(), hit.end()) if i == 0 else (-1, -1)
            shown = text[start:end] if i == 0 else hit.group(0)  # as the user wrote it
            found.append(Finding(rule.category, rule.id, rule.why, shown[:160], channel, start, end))
            break
    return found
