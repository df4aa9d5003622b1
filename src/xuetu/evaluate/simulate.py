"""Simulated user tests (模拟用户测试): scripted conversations with checks on every reply, against any served model.

    conversations:
      - name: explains LoRA in Chinese
        system: 你是一位耐心的 AI 学习助手。     # optional
        turns:
          - user: 什么是 LoRA？
            expect: {language: zh, contains: [LoRA], max_chars: 600}
          - user: 用一句话总结。
            expect: {regex: "。$", not_contains: ["I don't know"]}

Checks: `contains` (every keyword, case-insensitive), `any_of` (at least one), `not_contains`, `regex`
(Python, searched), `max_chars`, `language` (zh, en, …), `cites: true` (the reply cites a source as [n],
and, when the server returned citations, one of them is marked cited). Replies come from an
OpenAI-compatible endpoint (xuetu serve, Ollama, vLLM, a hosted API) with the real `openai` client; a
knowledge base is used with `kb:` (xuetu's extension). Each turn's reply joins the history, as a user's
would. The result is a pass rate and a failure list; `xuetu simulate` exits non-zero on any failure, so it
can guard an assistant in CI.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from xuetu.errors import XuetuError

CHECKS = ("contains", "any_of", "not_contains", "regex", "max_chars", "language", "cites")


@dataclass
class Failure:
    conversation: str
    turn: int
    check: str
    why: str
    reply: str


@dataclass
class Result:
    turns: int = 0
    passed: int = 0
    failures: list[Failure] = field(default_factory=list)

    @property
    def pass_rate(self) -> float:
        return self.passed / self.turns if self.turns else 0.0

    def to_dict(self) -> dict:
        return {"turns": self.turns, "passed": self.passed, "pass_rate": self.pass_rate,
                "failures": [f.__dict__ for f in self.failures]}


def load(path: Path) -> list[dict]:
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise XuetuError(f"cannot read {path}: {e}", "Give a YAML file with a `conversations:` list.") from None
    convs = data.get("conversations") if isinstance(data, dict) else None
    if not isinstance(convs, list) or not convs:
        raise XuetuError(f"{path} has no conversations", "Write `conversations:` with a list of {name, turns}.")
    for i, conv in enumerate(convs):
        where = f"{path}: conversation {i + 1}"
        if not isinstance(conv, dict) or not isinstance(conv.get("turns"), list) or not conv["turns"]:
            raise XuetuError(f"{where} has no turns", "Each conversation needs `turns:` with `- user: …` items.")
        conv.setdefault("name", f"conversation {i + 1}")
        for j, turn in enumerate(conv["turns"]):
            if not isinstance(turn, dict) or not isinstance(turn.get("user"), str):
                raise XuetuError(f"{where}, turn {j + 1} has no `user:` text")
            unknown = set(turn.get("expect") or {}) - set(CHECKS)
            if unknown:
                raise XuetuError(f"{where}, turn {j + 1}: unknown check {', '.join(sorted(unknown))}",
                                 f"Checks: {', '.join(CHECKS)}.")
            if "regex" in (turn.get("expect") or {}):
                try:
                    re.compile(turn["expect"]["regex"])
                except re.error as e:
                    raise XuetuError(f"{where}, turn {j + 1}: bad regex ({e})") from None
    return convs


def check(reply: str, expect: dict, citations: list | None = None) -> list[tuple[str, str]]:
    """The failed checks of one reply, as (check, why)."""
    from xuetu.data.language import detect_language

    low = reply.lower()
    bad = []
    if missing := [k for k in expect.get("contains", []) if str(k).lower() not in low]:
        bad.append(("contains", f"missing {', '.join(map(str, missing))}"))
    if (any_of := expect.get("any_of")) and not any(str(k).lower() in low for k in any_of):
        bad.append(("any_of", f"none of {', '.join(map(str, any_of))}"))
    if found := [k for k in expect.get("not_contains", []) if str(k).lower() in low]:
        bad.append(("not_contains", f"contains {', '.join(map(str, found))}"))
    if (regex := expect.get("regex")) and not re.search(regex, reply):
        bad.append(("regex", f"no match for {regex!r}"))
    if (limit := expect.get("max_chars")) is not None and len(reply) > int(limit):
        bad.append(("max_chars", f"{len(reply)} characters, more than {limit}"))
    if (lang := expect.get("language")) and (got := detect_language(reply)) != lang:
        bad.append(("language", f"in {got}, not {lang}"))
    if expect.get("cites"):
        marks = re.findall(r"\[(\d+)\]", reply)
        if not marks:
            bad.append(("cites", "cites no source as [n]"))
        elif citations is not None and not any(c.get("cited") for c in citations):
            bad.append(("cites", f"cites {', '.join(sorted(set(marks)))}, which are not among the sources given"))
    return bad


def run(convs: list[dict], model: str, base_url: str, api_key: str = "unused", kb: str | None = None,
        temperature: float = 0.0, max_tokens: int = 256, progress: bool = True) -> Result:
    from openai import APIConnectionError, APIStatusError, OpenAI
    from tqdm.auto import tqdm

    client = OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=300)
    result = Result()
    total = sum(len(c["turns"]) for c in convs)
    bar = tqdm(total=total, desc="simulated users", unit="turn", disable=not progress)
    try:
        for conv in convs:
            history = [{"role": "system", "content": conv["system"]}] if conv.get("system") else []
            for j, turn in enumerate(conv["turns"]):
                history.append({"role": "user", "content": turn["user"]})
                extra = {"kb": conv.get("kb") or kb} if (conv.get("kb") or kb) else None
                try:
                    reply = client.chat.completions.create(model=conv.get("model") or model, messages=history,
                                                           temperature=temperature, max_tokens=max_tokens,
                                                           extra_body=extra)
                except APIConnectionError:
                    raise XuetuError(f"cannot reach {base_url}", "Start the server (`xuetu serve`) or check --url.") \
                        from None
                except APIStatusError as e:
                    raise XuetuError(f"the server refused turn {j + 1} of {conv['name']!r}: {e.status_code} "
                                     f"{str(e.message)[:200]}", "Check --model, --kb and --key.") from None
                text = reply.choices[0].message.content or ""
                citations = (reply.model_extra or {}).get("citations")
                history.append({"role": "assistant", "content": text})
                bad = check(text, turn.get("expect") or {}, citations)
                result.turns += 1
                result.passed += not bad
                result.failures += [Failure(conv["name"], j + 1, c, why, text[:300]) for c, why in bad]
                bar.update()
    finally:
        bar.close()
    return result
