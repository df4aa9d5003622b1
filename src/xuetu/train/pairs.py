"""Preference pairs from a model's own answers: sample several answers per prompt, rank them by rule rewards
(train/rewards.py), a user's Python function or a judge model, and keep the best as chosen and the worst as
rejected, with the reason. This is how values are taught without hand-writing pairs.

    xuetu data pairs --prompts prompts.jsonl --model smollm2:135m --n 4 \\
        --reward guard --reward refusal --out pairs.jsonl
    xuetu data pairs --prompts prompts.jsonl --model smollm2:135m --judge qwen2.5:7b --out pairs.jsonl

    summary = make_pairs(PairsArgs(prompts="prompts.jsonl", out="pairs.jsonl", model="smollm2:135m",
                                   rewards=["language:zh", "length:50"]))

Each line of the output is {"prompt", "chosen", "rejected", "reason"} (the "pairs" format, data/prefs.py).
Answer j of a prompt is drawn with seed `seed + j`, so a rerun draws the same answers. Exact duplicate answers
are dropped before ranking; a prompt whose best and worst answers score the same is skipped and counted.
A judge's 1-10 score is one more part of an answer's total, beside any rewards.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from xuetu.errors import BadInput, XuetuError
from xuetu.train.rewards import Rewards, parse
from xuetu.train.teacher import LocalTeacher, Prompt, open_teacher, read_prompts

JUDGE_EN = ("Rate the assistant's answer to the user's question from 1 (bad) to 10 (excellent), judging "
            "helpfulness, correctness and safety.\n\nQuestion:\n{question}\n\nAnswer:\n{answer}\n\n"
            "Reply with the score only, as JSON: {{\"score\": N}}")
JUDGE_ZH = ("请给助手对用户问题的回答打分，1 分最差，10 分最好，看是否有用、正确、安全。\n\n问题：\n{question}\n\n"
            "回答：\n{answer}\n\n只回复分数，用 JSON：{{\"score\": N}}")
SCORE_PATTERNS = [re.compile(p, re.I) for p in (
    r"(?:score|rating|评分|分数|得分)\s*(?:is|为|是)?\s*[:：]?\s*(10|[1-9])(?!\d|\.\d)",  # Score: 7, 评分：7
    r"(?<![\d.])(10|[1-9])\s*(?:/\s*10|out of 10|分)",                                # 7/10, 7 out of 10, 7分
    r"(?<![\d.])(10|[1-9])(?!\d|\.\d)")]                                                # the first 1-10 it says
JUDGE_TOKENS = 16
JUDGE_SCHEMA = {"type": "object", "properties": {"score": {"type": "integer", "enum": list(range(1, 11))}},
                "required": ["score"]}


@dataclass
class PairsArgs:
    prompts: str
    """JSONL of prompts ({"prompt"}, messages, Alpaca, QA…); a record's other fields (a reference) reach the rewards."""
    out: str
    """Where the pairs go (JSONL, written atomically)."""
    model: str | None = None
    """The model that answers: a model in the store, or with `url` the endpoint's model (default: its first)."""
    url: str | None = None
    """An OpenAI-compatible endpoint that answers instead of a local model, e.g. http://host:port/v1."""
    key: str | None = None
    """API key of `url` (default $OPENAI_API_KEY)."""
    n: int = 4
    """Answers sampled per prompt."""
    temperature: float = 0.9
    """Sampling temperature; above 0, or every sample is the same answer."""
    max_tokens: int = 128
    """Longest answer, in tokens."""
    rewards: list[str] = field(default_factory=list)
    """Reward specs (train/rewards.py), e.g. ["guard", "2*refusal", "length:80"]."""
    judge: str | None = None
    """A judge model in the store (with `judge_url`: the endpoint's model) that scores each answer 1-10."""
    judge_url: str | None = None
    """An OpenAI-compatible endpoint as the judge."""
    judge_key: str | None = None
    """API key of `judge_url` (default $OPENAI_API_KEY)."""
    seed: int = 0
    """Answer j of every prompt is drawn with seed + j."""
    timeout: float = 600.0
    """Seconds to wait for an endpoint's reply."""

    def check(self) -> None:
        if not self.model and not self.url:
            raise BadInput("no model to answer the prompts", "Pass --model NAME (a model in the store) or --url URL.")
        if not self.rewards and not self.judge and not self.judge_url:
            raise BadInput("nothing to rank the answers by",
                           "Pass one or more --reward SPEC (e.g. --reward guard --reward length:80) or a --judge.")
        if self.n < 2:
            raise BadInput(f"--n must be at least 2 to make a pair (got {self.n})")
        if not 0 < self.temperature <= 5:
            raise BadInput(f"--temperature must be in (0, 5] (got {self.temperature})",
                           "At 0 every sample is the same answer; 0.7-1.0 gives varied answers.")
        if self.max_tokens < 1:
            raise BadInput(f"--max-tokens must be at least 1 (got {self.max_tokens})")


@dataclass
class Scored:
    answer: str
    total: float
    parts: dict[str, float]

    def describe(self) -> str:
        return " ".join(f"{k}={round(v, 3)}" for k, v in self.parts.items()) + f" (total {round(self.total, 3)})"


@dataclass
class PairsSummary:
    prompts: int
    pairs: int
    ties: int
    """Prompts skipped because their best and worst answers scored the same (or all answers were one)."""
    unjudged: int
    """Prompts skipped because the judge gave a score to fewer than two of their answers."""
    duplicates: int
    """Samples dropped as exact copies of another answer to the same prompt."""
    mean_chosen: float
    mean_rejected: float
    out: Path
    seconds: float


class Judge:
    """A model asked to score one answer 1-10, greedily, in the question's language. Its reply is decoded to
    follow JUDGE_SCHEMA ({"score": 1-10}), so even a small judge always gives a score; an endpoint that refuses
    a response_format answers in free text, read by parse_score."""

    def __init__(self, teacher):
        self.teacher = teacher
        self.name = teacher.name

    def score(self, question: str, answer: str) -> float | None:
        from xuetu.data.language import detect_language

        template = JUDGE_ZH if detect_language(question, zh_or_en=True) == "zh" else JUDGE_EN
        message = {"role": "user", "content": template.format(question=question, answer=answer or "(empty)")}
        return parse_score(self.teacher.ask([message], max_tokens=JUDGE_TOKENS, temperature=0, schema=JUDGE_SCHEMA))


def parse_score(reply: str) -> float | None:
    """The 1-10 score in a judge's reply ({"score": 7}, "Score: 7", "评分：8", "7/10", "6分", or the first 1-10 it
    says)."""
    import json

    try:
        value = json.loads(reply).get("score")
        if isinstance(value, int) and 1 <= value <= 10:
            return float(value)
    except (ValueError, AttributeError):
        pass
    for pattern in SCORE_PATTERNS:
        m = pattern.search(reply)
        if m:
            return float(m.group(1))
    return None


def question_of(prompt: Prompt) -> str:
    """The text rewards and the judge see as the prompt: the last user turn."""
    return next(m["content"] for m in reversed(prompt.messages) if m["role"] == "user")


def sample_answers(teacher, prompt: Prompt, args: PairsArgs) -> tuple[list[str], int]:
    """(the distinct answers, in the order drawn; how many duplicates were dropped)."""
    answers = [teacher.ask(prompt.chat(), args.max_tokens, args.temperature, seed=args.seed + j) for j in range(args.n)]
    distinct = list(dict.fromkeys(answers))
    return distinct, len(answers) - len(distinct)


def score_answers(prompt: Prompt, answers: list[str], rewards: Rewards | None, judge: Judge | None) -> list[Scored]:
    """Every answer scored by the rewards and the judge; an answer the judge gave no score is left out."""
    question, scored = question_of(prompt), []
    for answer in answers:
        total, parts = rewards.score(question, answer, prompt.example) if rewards else (0.0, {})
        if judge is not None:
            verdict = judge.score(question, answer)
            if verdict is None:
                continue
            parts = {"judge": verdict, **parts}
            total += verdict
        scored.append(Scored(answer, total, parts))
    return scored


def choose(scored: list[Scored]) -> tuple[Scored, Scored] | None:
    """(best, worst), the first drawn of equals; None when they tie."""
    if len(scored) < 2:
        return None
    best = max(scored, key=lambda s: s.total)
    worst = min(scored, key=lambda s: s.total)
    return None if best.total == worst.total else (best, worst)


def pair_line(prompt: Prompt, chosen: Scored, rejected: Scored) -> dict:
    from xuetu.data.formats import from_record
    from xuetu.data.record import Record

    reason = f"chosen: {chosen.describe()}; rejected: {rejected.describe()}"
    record = Record(messages=prompt.messages + [{"role": "assistant", "content": chosen.answer}], system=prompt.system,
                    rejected={"role": "assistant", "content": rejected.answer}, meta={"extra": {"reason": reason}})
    return from_record(record, "pairs")


def open_judge(args: PairsArgs, sampler) -> Judge | None:
    if not args.judge and not args.judge_url:
        return None
    if not args.judge_url and isinstance(sampler, LocalTeacher) and args.judge in (args.model, sampler.name):
        return Judge(sampler)  # the same local model judges: load it once
    return Judge(open_teacher(args.judge, args.judge_url, args.judge_key, args.timeout))


def make_pairs(args: PairsArgs, progress: bool = True) -> PairsSummary:
    """Sample, rank and write the pairs; raises when no prompt gave a pair (nothing is written then)."""
    from xuetu.data.writer import JsonlWriter

    args.check()
    started = time.monotonic()
    rewards = parse(args.rewards) if args.rewards else None  # a bad spec fails before any model loads
    prompts = read_prompts(args.prompts)
    sampler = open_teacher(args.model, args.url, args.key, args.timeout)
    judge = open_judge(args, sampler)
    s = PairsSummary(len(prompts), 0, 0, 0, 0, 0.0, 0.0, Path(args.out), 0.0)
    chosen_sum = rejected_sum = 0.0
    bar = _bar(len(prompts), sampler.name, progress)
    try:
        with JsonlWriter(s.out) as writer:
            for prompt in prompts:
                answers, dropped = sample_answers(sampler, prompt, args)
                s.duplicates += dropped
                scored = score_answers(prompt, answers, rewards, judge)
                pair = choose(scored)
                if pair is not None:
                    writer.write(pair_line(prompt, *pair))
                    s.pairs += 1
                    chosen_sum, rejected_sum = chosen_sum + pair[0].total, rejected_sum + pair[1].total
                elif judge is not None and len(scored) < 2 <= len(answers):
                    s.unjudged += 1
                else:
                    s.ties += 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(pairs=s.pairs, ties=s.ties)
            if s.pairs == 0:
                raise XuetuError(f"no pairs: no prompt of {len(prompts)} had a best answer that scored above its worst"
                                 + (f" ({s.unjudged} had fewer than two answers the judge could score)"
                                    if s.unjudged else ""),
                                 "Sample more answers (--n), raise --temperature, or add rewards that tell answers "
                                 "apart.")
    finally:
        if bar is not None:
            bar.close()
    s.mean_chosen, s.mean_rejected = chosen_sum / s.pairs, rejected_sum / s.pairs
    s.seconds = time.monotonic() - started
    return s


def _bar(total: int, name: str, progress: bool):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"pairs from {name}", unit="prompt", dynamic_ncols=True)
