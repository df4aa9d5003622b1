"""Turn a record into training tokens with the model's own chat template, and a loss mask that
covers only what the assistant says.

The conversation is rendered to text once; each assistant turn's span is found by rendering the
conversation up to that turn with and without the answer; the text is tokenised once with offsets,
and tokens inside those spans get labels, the rest -100. Works for any template that renders a
conversation as a prefix of its continuation (ChatML, Llama 3, Gemma, …); others are refused.

A record with tools is rendered as serving renders it (xuetu.tools.prompt): through the template's own tool
support, or xuetu's fallback prompt with Hermes <tool_call> blocks. The assistant's calls are then trained on,
like its answers; the tool results, like the user's words, are not.
"""

from __future__ import annotations

from dataclasses import dataclass

from xuetu.data.record import Record
from xuetu.errors import XuetuError

IGNORE = -100


@dataclass
class TrainingExample:
    input_ids: list[int]
    labels: list[int]
    """Same length as input_ids; IGNORE where no loss is taken."""

    @property
    def trained_tokens(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE)


def _render(tokenizer, messages: list[dict], add_generation_prompt: bool, tools: list[dict] | None = None) -> str:
    return tokenizer.apply_chat_template(messages, tools=tools, tokenize=False,
                                         add_generation_prompt=add_generation_prompt)


def assistant_spans(tokenizer, messages: list[dict], tools: list[dict] | None = None
                    ) -> tuple[str, list[tuple[int, int]]]:
    """(the rendered conversation, character spans of each assistant answer incl. its end-of-turn)."""
    full = _render(tokenizer, messages, False, tools)
    spans = []
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        before = _render(tokenizer, messages[:i], True, tools) if i else ""
        upto = _render(tokenizer, messages[: i + 1], False, tools)
        if not (upto.startswith(before) and full.startswith(upto)):
            raise XuetuError("this chat template does not render a conversation as a prefix of its continuation",
                             "xuetu cannot locate the answers to train on; use a ChatML-style template.")
        spans.append((len(before), len(upto)))
    return full, spans


def tokenize_for_training(tokenizer, record: Record, max_length: int | None = None) -> TrainingExample:
    if record.is_text:  # pretraining: every token is trained, ending with end-of-text
        ids = tokenizer(record.text, add_special_tokens=False)["input_ids"]
        if tokenizer.eos_token_id is not None:
            ids = ids + [tokenizer.eos_token_id]
        ids = ids[:max_length] if max_length else ids
        return TrainingExample(ids, list(ids))
    if not tokenizer.chat_template:
        raise XuetuError("the tokenizer has no chat template", "Fine-tune a chat model, or give raw text to pretrain.")
    messages = ([{"role": "system", "content": record.system}] if record.system else []) + record.messages
    template_tools = None
    if record.uses_tools:
        from xuetu.tools import parse_tools
        from xuetu.tools.prompt import prepare

        messages, template_tools, _ = prepare(messages, parse_tools(record.tools), tokenizer.chat_template)
    text, spans = assistant_spans(tokenizer, messages, template_tools)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    labels = []
    for tid, (start, _end) in zip(enc["input_ids"], enc["offset_mapping"]):
        inside = any(s <= start < e for s, e in spans)
        labels.append(tid if inside else IGNORE)
    ids = list(enc["input_ids"])
    if max_length:
        ids, labels = ids[:max_length], labels[:max_length]
    return TrainingExample(ids, labels)
