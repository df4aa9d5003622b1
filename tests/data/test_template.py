"""Loss masks checked against hand-made expectations on two chat templates."""

from pathlib import Path

import pytest

from helpers.tiny import build_tokenizer
from xuetu.data import IGNORE, to_record, tokenize_for_training
from xuetu.errors import XuetuError

SMOLLM2 = (Path(__file__).parents[1] / "helpers" / "smollm2_chat_template.jinja").read_text(encoding="utf-8")
QWEN = (
    "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}"
    "{%- endif %}{%- for message in messages %}{%- if not (message.role == 'system' and loop.first) %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

CONVERSATION = {"messages": [{"role": "user", "content": "什么是 LoRA？"}, {"role": "assistant", "content": "低秩适配。"},
                             {"role": "user", "content": "And QLoRA?"}, {"role": "assistant", "content": "LoRA on 4-bit."}]}


def tokenizer_with(template):
    tok = build_tokenizer()
    tok.chat_template = template
    return tok


@pytest.mark.parametrize("template, default_system", [
    (SMOLLM2, "You are a helpful AI assistant named SmolLM, trained by Hugging Face"),
    (QWEN, "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."),
])
def test_only_answers_are_trained(template, default_system):
    tok = tokenizer_with(template)
    ex = tokenize_for_training(tok, to_record(CONVERSATION))
    assert len(ex.input_ids) == len(ex.labels)
    full = tok.decode(ex.input_ids)
    assert full == (f"<|im_start|>system\n{default_system}<|im_end|>\n"
                    "<|im_start|>user\n什么是 LoRA？<|im_end|>\n<|im_start|>assistant\n低秩适配。<|im_end|>\n"
                    "<|im_start|>user\nAnd QLoRA?<|im_end|>\n<|im_start|>assistant\nLoRA on 4-bit.<|im_end|>\n")
    trained = tok.decode([t for t, lab in zip(ex.input_ids, ex.labels) if lab != IGNORE])
    assert trained == "低秩适配。<|im_end|>\nLoRA on 4-bit.<|im_end|>\n"
    assert all(lab in (IGNORE, t) for t, lab in zip(ex.input_ids, ex.labels))


def test_system_prompt_is_not_trained():
    tok = tokenizer_with(QWEN)
    rec = to_record({"messages": [{"role": "system", "content": "Be kind."}, *CONVERSATION["messages"][:2]]})
    ex = tokenize_for_training(tok, rec)
    assert tok.decode(ex.input_ids).startswith("<|im_start|>system\nBe kind.<|im_end|>")
    assert tok.decode([t for t, lab in zip(ex.input_ids, ex.labels) if lab != IGNORE]) == "低秩适配。<|im_end|>\n"


def test_raw_text_trains_everything_and_truncates():
    tok = tokenizer_with(SMOLLM2)
    ex = tokenize_for_training(tok, to_record({"text": "大模型是一个聪明的孩子。"}))
    assert ex.labels == ex.input_ids and ex.input_ids[-1] == tok.eos_token_id
    short = tokenize_for_training(tok, to_record(CONVERSATION), max_length=10)
    assert len(short.input_ids) == len(short.labels) == 10


def test_templates_that_rewrite_history_are_refused():
    tok = tokenizer_with("{% for m in messages %}{{ m['content'] }}{% endfor %}{% if add_generation_prompt %}>>{% endif %}")
    with pytest.raises(XuetuError, match="prefix"):
        tokenize_for_training(tok, to_record(CONVERSATION))


TOOL_RECORD = {
    "tools": [{"type": "function", "function": {"name": "get_weather", "description": "The weather in a city.",
                                                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
    "messages": [{"role": "user", "content": "北京天气？"},
                 {"role": "assistant", "content": "", "tool_calls": [
                     {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "北京"}'}}]},
                 {"role": "tool", "tool_call_id": "c1", "content": "晴，25度"},
                 {"role": "assistant", "content": "北京今天晴，25度。"}]}


def test_tool_calls_are_trained_as_serving_renders_them_and_results_are_not():
    """The embedded model's template has no tools: xuetu's fallback prompt, calls as <tool_call> blocks."""
    from xuetu.tools.prompt import FALLBACK

    tok = tokenizer_with(SMOLLM2)
    ex = tokenize_for_training(tok, to_record(TOOL_RECORD))
    full = tok.decode(ex.input_ids)
    assert FALLBACK.splitlines()[0] in full and '"name": "get_weather"' in full
    trained = tok.decode([t for t, lab in zip(ex.input_ids, ex.labels) if lab != IGNORE])
    assert trained == ('<tool_call>\n{"name": "get_weather", "arguments": {"city": "北京"}}\n</tool_call><|im_end|>\n'
                       "北京今天晴，25度。<|im_end|>\n")
    assert "晴，25度<" not in trained.replace("晴，25度。", "")  # the tool's result is read, not learnt


def test_a_template_with_tools_renders_its_own_tool_prompt_for_training():
    qwen_tools = (Path(__file__).parents[1] / "tools" / "templates" / "qwen2.5.jinja").read_text(encoding="utf-8")
    tok = tokenizer_with(qwen_tools)
    ex = tokenize_for_training(tok, to_record(TOOL_RECORD))
    full = tok.decode(ex.input_ids)
    assert "# Tools" in full and "<tool_response>\n晴，25度\n</tool_response>" in full
    trained = tok.decode([t for t, lab in zip(ex.input_ids, ex.labels) if lab != IGNORE])
    assert '<tool_call>\n{"name": "get_weather", "arguments": {"city": "北京"}}\n</tool_call>' in trained
    assert "<tool_response>" not in trained
