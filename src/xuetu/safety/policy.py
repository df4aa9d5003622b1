"""What the guards do about each category, for the whole server and per API key.

    actions:                     # block | mask | warn | log | off
      violence: block
      pii: mask
      indirect_injection: block  # on a retrieved chunk: that chunk is left out of the prompt
    hold_back: 32                # characters of streamed output held back until checked
    audit_log: guard-audit.jsonl # under XUETU_HOME/logs unless absolute; "" turns it off
    rate_limit: {requests_per_minute: 60, burst: 10}   # 0 = no limit
    quota: {tokens_per_day: 200000}                    # prompt + completion tokens; 0 = none
    scorer: {threshold: 0.40}    # the built-in n-gram scorer (scorer/); `scorer: off` turns it off
    classifier: {model: NAME, threshold: 0.8, labels: {toxic: hate}, channels: [user, output]}
    keys:                        # per API key (the key itself, or sha256:<first hex digits>)
      sk-teacher: {actions: {pii: warn}, rate_limit: {requests_per_minute: 600}}
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from xuetu.errors import XuetuError

ACTIONS = ("block", "mask", "warn", "log", "off")
SEVERITY = {"off": 0, "log": 1, "warn": 2, "mask": 3, "block": 4}
DEFAULT_ACTIONS = {"violence": "block", "sexual": "block", "hate": "block", "self_harm": "block", "illegal": "block",
                   "injection": "block", "jailbreak": "block", "system_prompt_extraction": "block",
                   "exfiltration": "block", "indirect_injection": "block", "pii": "mask"}
UNKNOWN_CATEGORY = "warn"  # a category only the user's own rules define


@dataclass
class Limits:
    requests_per_minute: float = 0
    burst: int = 10
    tokens_per_day: int = 0


@dataclass
class Policy:
    actions: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_ACTIONS))
    hold_back: int = 32
    audit_log: str = "guard-audit.jsonl"
    limits: Limits = field(default_factory=Limits)
    scorer: dict | None = field(default_factory=dict)
    """The built-in scorer's settings (threshold, strong, channels); None when it is off"""
    classifier: dict | None = None
    keys: dict[str, dict] = field(default_factory=dict)
    """key id -> {"actions": {...}, "limits": Limits}"""

    def action(self, category: str, key: str | None = None) -> str:
        own = self._key_entry(key)
        if own and category in own.get("actions", {}):
            return own["actions"][category]
        return self.actions.get(category, UNKNOWN_CATEGORY)

    def limits_for(self, key: str | None) -> Limits:
        own = self._key_entry(key)
        return own["limits"] if own and own.get("limits") else self.limits

    def _key_entry(self, key: str | None) -> dict | None:
        if not key or not self.keys:
            return None
        if key in self.keys:
            return self.keys[key]
        digest = key_id(key).removeprefix("sha256:")
        return next((v for k, v in self.keys.items() if k.startswith("sha256:") and digest.startswith(k[7:])), None)


def key_id(key: str | None) -> str | None:
    """How a key appears in logs: never the key itself."""
    return None if not key else "sha256:" + hashlib.sha256(key.encode()).hexdigest()[:12]


def _actions(raw, where: str) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise XuetuError(f"{where}: actions must be a mapping of category -> action")
    for cat, act in raw.items():
        if act not in ACTIONS:
            raise XuetuError(f"{where}: the action for {cat} must be one of {', '.join(ACTIONS)}, got {act!r}")
    return {str(k): str(v) for k, v in raw.items()}


def _limits(raw: dict | None, quota: dict | None, base: Limits, where: str) -> Limits:
    out = Limits(base.requests_per_minute, base.burst, base.tokens_per_day)
    for name, value in {**(raw or {}), **(quota or {})}.items():
        if name not in ("requests_per_minute", "burst", "tokens_per_day"):
            raise XuetuError(f"{where}: unknown limit {name!r}", "Known: requests_per_minute, burst, tokens_per_day.")
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            raise XuetuError(f"{where}: {name} must be a number >= 0, got {value!r}")
        setattr(out, name, value)
    return out


def from_dict(data: dict, where: str = "policy") -> Policy:
    known = {"actions", "hold_back", "audit_log", "rate_limit", "quota", "scorer", "classifier", "keys"}
    unknown = set(data) - known
    if unknown:
        raise XuetuError(f"{where}: unknown setting {', '.join(sorted(unknown))}", f"Known: {', '.join(sorted(known))}.")
    policy = Policy()
    policy.actions.update(_actions(data.get("actions") or {}, where))
    hold = data.get("hold_back", policy.hold_back)
    if not isinstance(hold, int) or not 0 <= hold <= 4096:
        raise XuetuError(f"{where}: hold_back must be an integer from 0 to 4096 characters, got {hold!r}")
    policy.hold_back = hold
    policy.audit_log = str(data.get("audit_log", policy.audit_log) or "")
    policy.limits = _limits(data.get("rate_limit"), data.get("quota"), Limits(), where)
    scorer = data.get("scorer", {})
    if scorer in (False, "off", None):
        policy.scorer = None
    elif isinstance(scorer, dict) and set(scorer) <= {"threshold", "strong", "channels"}:
        policy.scorer = scorer
    else:
        raise XuetuError(f"{where}: scorer must be off or a mapping with threshold, strong and channels, "
                         f"got {scorer!r}")
    policy.classifier = data.get("classifier")
    if policy.classifier is not None and not (isinstance(policy.classifier, dict) and policy.classifier.get("model")):
        raise XuetuError(f"{where}: classifier needs a model (any Hugging Face text-classification model)")
    for key, entry in (data.get("keys") or {}).items():
        if not isinstance(entry, dict):
            raise XuetuError(f"{where}: keys.{key} must be a mapping")
        policy.keys[str(key)] = {"actions": _actions(entry.get("actions") or {}, f"{where} keys.{key}"),
                                 "limits": _limits(entry.get("rate_limit"), entry.get("quota"), policy.limits,
                                                   f"{where} keys.{key}")}
    return policy


def load(path: str | Path | None) -> Policy:
    if path is None:
        return Policy()
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as e:
        raise XuetuError(f"cannot read the guard policy {path}: {e.strerror}", "Check the path.") from None
    except yaml.YAMLError as e:
        raise XuetuError(f"the guard policy {path} is not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise XuetuError(f"the guard policy {path} must be a mapping")
    return from_dict(data, str(path))
