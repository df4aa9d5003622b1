"""LLM as judge: a model scores answers against a rubric, pointwise (1-10) or pairwise (A or B).

Pairwise judging asks twice with the answers' positions swapped: judges favour a position (often the
first), and a verdict that flips with the order is a tie, not a win. The judge is any callable that takes
chat messages and returns text: a local engine (`engine_judge`) or an OpenAI-compatible server (`api_judge`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

Ask = Callable[[list[dict]], str]
RUBRIC = "correctness first, then helpfulness, then clarity"
PAIR = ("You are a strict judge. Compare two answers to the question by {rubric}.\n\n"
        "Question:\n{question}\n\n{ref}Answer A:\n{a}\n\nAnswer B:\n{b}\n\n"
        "Reply with exactly one line: 'Winner: A', 'Winner: B' or 'Winner: tie'.")
POINT = ("You are a strict judge. Score the answer to the question from 1 (useless) to 10 (perfect) by {rubric}.\n\n"
         "Question:\n{question}\n\n{ref}Answer:\n{a}\n\nReply with exactly one line: 'Score: N'.")


@dataclass
class Verdict:
    winner: str
    """"a", "b" or "tie" (a tie also when the two orders disagree)"""
    first: str
    """what the judge said with a first"""
    swapped: str
    """what it said with b first, mapped back to a/b"""

    @property
    def consistent(self) -> bool:
        return self.first == self.swapped


def _winner(text: str) -> str:
    m = re.search(r"winner\s*[:：]\s*(a|b|tie)\b", text, re.I) or re.search(r"\b(tie)\b|\banswer\s+(a|b)\b", text, re.I)
    if not m:
        return "tie"  # an unparseable verdict counts for neither side
    return next(g for g in m.groups() if g).lower()


def pairwise(ask: Ask, question: str, a: str, b: str, reference: str | None = None, rubric: str = RUBRIC) -> Verdict:
    ref = f"Reference answer:\n{reference}\n\n" if reference else ""
    first = _winner(ask([{"role": "user", "content": PAIR.format(rubric=rubric, question=question, ref=ref, a=a, b=b)}]))
    second = _winner(ask([{"role": "user", "content": PAIR.format(rubric=rubric, question=question, ref=ref, a=b, b=a)}]))
    swapped = {"a": "b", "b": "a"}.get(second, "tie")
    return Verdict(first if first == swapped else "tie", first, swapped)


def pointwise(ask: Ask, question: str, answer: str, reference: str | None = None, rubric: str = RUBRIC) -> float | None:
    """1-10, or None when the judge's reply holds no score."""
    ref = f"Reference answer:\n{reference}\n\n" if reference else ""
    text = ask([{"role": "user", "content": POINT.format(rubric=rubric, question=question, ref=ref, a=answer)}])
    m = re.search(r"score\s*[:：]\s*(10|[1-9])\b", text, re.I) or re.search(r"\b(10|[1-9])\s*/\s*10\b", text)
    return float(m.group(1)) if m else None


def engine_judge(name: str, max_tokens: int = 16) -> Ask:
    """A local model as judge, greedy."""
    from xuetu import engines
    from xuetu.engines.base import GenerateOptions

    engine = engines.load(name)
    opts = GenerateOptions(temperature=0.0, max_tokens=max_tokens, repeat_penalty=1.0)
    return lambda messages: "".join(c.text for c in engine.generate(messages, opts))


def api_judge(model: str, base_url: str, api_key: str = "unused", max_tokens: int = 16) -> Ask:
    """Any OpenAI-compatible model as judge, greedy (on the remote engine: its retries and errors)."""
    from xuetu.engines.base import GenerateOptions
    from xuetu.engines.remote import RemoteEngine

    engine = RemoteEngine.endpoint(base_url, model, None if api_key == "unused" else api_key)

    def ask(messages):
        return "".join(c.text for c in engine.generate(messages, GenerateOptions(temperature=0, max_tokens=max_tokens)))

    return ask
