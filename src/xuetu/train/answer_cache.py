"""The teacher's answers, cached as JSONL in the run folder: one line per finished prompt, appended and
flushed as each answer arrives, so a killed run loses at most the prompt it was on.

    cache = AnswerCache(run / "teacher.jsonl")
    stats = answer_prompts(prompts, teacher, cache, cot=False, max_tokens=512, temperature=0)
    records = cache.dataset(prompts, stats.keys)        # messages records for fine-tuning

A line is keyed by a hash of the teacher, the settings that change its answer and the prompt, so a
rerun skips what was answered and a different teacher or --cot asks again. A half-written last line
(from a kill) is cut off before appending; any other unreadable line is skipped with a warning.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from xuetu.notify import warn
from xuetu.train.teacher import Prompt


def prompt_key(prompt: Prompt, teacher: str, cot: bool, max_tokens: int, temperature: float) -> str:
    blob = json.dumps([teacher, bool(cot), int(max_tokens), float(temperature), prompt.system, prompt.messages],
                      ensure_ascii=False)  # 0 and 0.0 are one setting
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


class AnswerCache:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.answers: dict[str, str] = {}
        self._load()

    def _load(self) -> None:
        if not self.path.is_file():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):  # a kill in the middle of a line: cut it off, it is asked again
            cut = data.rfind(b"\n") + 1
            with open(self.path, "r+b") as f:
                f.truncate(cut)
            warn(f"{self.path.name}: dropped a half-written last line (that prompt is asked again)")
            data = data[:cut]
        bad = 0
        for line in data.decode("utf-8", errors="replace").splitlines():
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                self.answers[row["key"]] = row["answer"]
            except (ValueError, KeyError, TypeError):
                bad += 1
        if bad:
            warn(f"{self.path.name}: skipped {bad} unreadable lines (those prompts are asked again)")

    def add(self, key: str, prompt: Prompt, answer: str, teacher: str) -> None:
        row = {"key": key, "teacher": teacher, "system": prompt.system, "messages": prompt.messages, "answer": answer}
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.answers[key] = answer

    def dataset(self, prompts: list[Prompt], keys: list[str]) -> list[dict]:
        """Messages records (the prompt without the CoT instruction, then the teacher's answer); empty answers left out."""
        rows = []
        for prompt, key in zip(prompts, keys):
            answer = self.answers.get(key, "")
            if answer.strip():
                system = [{"role": "system", "content": prompt.system}] if prompt.system else []
                rows.append({"messages": system + prompt.messages + [{"role": "assistant", "content": answer}]})
        return rows


@dataclass
class AnswerStats:
    keys: list[str] = field(default_factory=list)
    asked: int = 0
    cached: int = 0
    empty: int = 0


def answer_prompts(prompts: list[Prompt], teacher, cache: AnswerCache, cot: bool, max_tokens: int,
                   temperature: float, progress: bool = True) -> AnswerStats:
    """Ask the teacher every prompt the cache has no answer for; returns what was asked and found."""
    stats = AnswerStats(keys=[prompt_key(p, teacher.name, cot, max_tokens, temperature) for p in prompts])
    todo = [(p, k) for p, k in zip(prompts, stats.keys) if k not in cache.answers]
    stats.cached = len(prompts) - len(todo)
    bar = None
    if progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(prompts), initial=stats.cached, desc=f"teacher {teacher.name}", unit="prompt",
                   dynamic_ncols=True)
    try:
        for prompt, key in todo:
            if key in cache.answers:  # the same prompt twice in the file
                continue
            cache.add(key, prompt, teacher.ask(prompt.chat(cot), max_tokens, temperature), teacher.name)
            stats.asked += 1
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    stats.empty = sum(1 for k in stats.keys if not cache.answers.get(k, "").strip())
    if stats.empty:
        warn(f"the teacher gave {stats.empty} empty answers of {len(prompts)}: those prompts are left out "
             f"(delete {cache.path} to ask again)")
    return stats
