"""From records to training examples: template, loss mask, length policy, and a report of what was cut."""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field

from xuetu.data.record import Record
from xuetu.data.template import TrainingExample, tokenize_for_training
from xuetu.errors import XuetuError

# Used when a model has no chat template of its own (base models): ChatML, the most common one.
FALLBACK_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@dataclass
class ExampleReport:
    records: int = 0
    kept: int = 0
    truncated: int = 0
    dropped_too_long: int = 0
    dropped_no_answer: int = 0
    tokens: int = 0
    trained_tokens: int = 0
    notes: list[str] = field(default_factory=list)


def ensure_template(tokenizer, records: list[Record]) -> str | None:
    """Give a template-less tokenizer the fallback when chat records need one; returns a warning or None."""
    if tokenizer.chat_template or all(r.is_text for r in records):
        return None
    tokenizer.chat_template = FALLBACK_TEMPLATE
    return "the model has no chat template: using ChatML (<|im_start|>…<|im_end|>); the tuned model keeps it"


def split_records(records: list[Record], fraction: float, seed: int) -> tuple[list[Record], list[Record]]:
    if fraction <= 0 or len(records) < 10:
        return records, []
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    n_val = max(1, round(len(records) * fraction))
    val = set(order[:n_val])
    return [r for i, r in enumerate(records) if i not in val], [r for i, r in enumerate(records) if i in val]


def build_examples(records: list[Record], tokenizer, max_length: int, truncation: str,
                   system_prompt: str | None = None) -> tuple[list[TrainingExample], ExampleReport]:
    report = ExampleReport(records=len(records))
    out = []
    for r in records:
        if system_prompt and not r.is_text and not r.system:
            r = dataclasses.replace(r, system=system_prompt)
        ex = tokenize_for_training(tokenizer, r)
        if len(ex.input_ids) > max_length:
            if truncation == "drop":
                report.dropped_too_long += 1
                continue
            ex = TrainingExample(ex.input_ids[:max_length], ex.labels[:max_length])
            report.truncated += 1
        if ex.trained_tokens == 0:
            report.dropped_no_answer += 1
            continue
        out.append(ex)
        report.tokens += len(ex.input_ids)
        report.trained_tokens += ex.trained_tokens
    report.kept = len(out)
    return out, report


def require_answers(records: list[Record], report: ExampleReport, path: str) -> None:
    if not records:
        raise XuetuError(f"{path} holds no records")
    if all(not r.is_text and r.turns == 0 for r in records):
        raise XuetuError(f"{path} has no assistant turns: there is nothing to learn to answer",
                         "Each record needs an answer (output / assistant / gpt). For raw text, use `xuetu pretrain`.")
    if report.kept == 0:
        raise XuetuError(f"no example of {path} fits: {report.dropped_too_long} too long, "
                         f"{report.dropped_no_answer} without an answer left after truncation",
                         "Raise --set max_length=…, or use --set truncation=truncate.")


