"""Tool calling through /v1/chat/completions, driven by the official openai SDK against a live `xuetu serve`
on the embedded SmolLM2 (llama.cpp) and the tiny model (transformers)."""

from __future__ import annotations

import json

import httpx
import openai
import pytest
from jsonschema import validate

from serve.conftest import KEY
from helpers.env import home_env
from helpers.tiny import build_tiny_model

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The current weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                                                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                   "required": ["city", "unit"]}}}
TIME = {"type": "function", "function": {
    "name": "get_time", "description": "The local time in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
# For the tiny random model: its byte-level tokenizer spends up to 3 tokens a character on a string it fills to
# the bound, so the bound is short.
SHORT = {"type": "function", "function": {**WEATHER["function"], "parameters": {
    "type": "object", "properties": {"city": {"type": "string", "maxLength": 12}}, "required": ["city"]}}}
SHORT_TIME = {"type": "function", "function": {**TIME["function"], "parameters": {
    "type": "object", "properties": {"city": {"type": "string", "maxLength": 12}}, "required": ["city"]}}}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for t in (WEATHER, TIME)}


def _tools(model: str) -> list[dict]:
    return [SHORT, SHORT_TIME] if model.startswith("tiny") else [WEATHER, TIME]


@pytest.fixture(scope="module")
def tiny_tools(serve_home, tmp_path_factory):
    """A tiny random model on the transformers engine, with room in its context for the tool prompt."""
    with home_env(serve_home):
        from xuetu import models

        models.create("tiny-tools:latest", build_tiny_model(tmp_path_factory.mktemp("tt"), context=2048),
                      progress=False)
    return "tiny-tools:latest"


def _valid(call, tools=(WEATHER, TIME)) -> dict:
    args = json.loads(call.function.arguments)
    validate(args, {t["function"]["name"]: t["function"]["parameters"] for t in tools}[call.function.name])
    assert call.id.startswith("call_") and call.type == "function"
    return args


@pytest.mark.parametrize("model", ["smollm2:135m", "tiny"])
def test_a_named_tool_choice_always_returns_a_valid_call(openai_client, tiny_tools, model):
    model = tiny_tools if model == "tiny" else model
    r = openai_client.chat.completions.create(
        model=model, messages=ASK, tools=_tools(model), temperature=0, max_tokens=200,
        tool_choice={"type": "function", "function": {"name": "get_weather"}})
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls", choice
    assert [c.function.name for c in choice.message.tool_calls] == ["get_weather"]
    _valid(choice.message.tool_calls[0], _tools(model))


@pytest.mark.parametrize("model", ["smollm2:135m", "tiny"])
def test_required_returns_a_valid_call_to_one_of_the_tools(openai_client, tiny_tools, model):
    model = tiny_tools if model == "tiny" else model
    for seed in range(3):
        r = openai_client.chat.completions.create(model=model, messages=ASK, tools=_tools(model), seed=seed,
                                                  tool_choice="required", max_tokens=200, temperature=0.8)
        choice = r.choices[0]
        assert choice.finish_reason == "tool_calls", choice
        _valid(choice.message.tool_calls[0], _tools(model))


def test_a_streamed_call_accumulates_in_the_sdk(openai_client):
    """The SDK's own stream helper puts the call back together from index, id, name and argument pieces."""
    with openai_client.chat.completions.stream(
            model="smollm2:135m", messages=ASK, tools=[WEATHER], temperature=0, max_tokens=120,
            tool_choice={"type": "function", "function": {"name": "get_weather"}}) as stream:
        kinds = [e.type for e in stream]
        final = stream.get_final_completion()
    assert "tool_calls.function.arguments.delta" in kinds and "tool_calls.function.arguments.done" in kinds
    call = final.choices[0].message.tool_calls[0]
    assert final.choices[0].finish_reason == "tool_calls" and call.function.name == "get_weather"
    _valid(call)


CUSTOMER = {"type": "function", "function": {
    "name": "create_customer", "description": "Create a customer with a name in its own language.",
    "parameters": {"type": "object", "properties": {"customer_name": {"type": "string"},
                                                    "description": {"type": "string"}},
                   "required": ["customer_name", "description"]}}}


@pytest.mark.parametrize("name", ["こんにちは株式会社", "你好啊集团"])
def test_a_forced_call_copies_an_argument_from_the_conversation(openai_client, name):
    """A forced call has no repeat penalty by default: the prose default, which looks back over the prompt too,
    pushed the model off the very tokens it had to copy (it wrote "<string>" for the Japanese name)."""
    r = openai_client.chat.completions.create(
        model="smollm2:135m", tools=[CUSTOMER], tool_choice="required", temperature=0, max_tokens=120,
        messages=[{"role": "user", "content": f"Create a customer named '{name}' (Hello Corporation) - a company"}])
    args = _valid(r.choices[0].message.tool_calls[0], [CUSTOMER])
    assert args["customer_name"] == name, args


def test_a_forced_call_keeps_a_repeat_penalty_the_request_sets(openai_client):
    """The request's own repeat_penalty still applies to a forced call: a strong one changes the answer."""
    def call(**extra):
        r = openai_client.chat.completions.create(
            model="smollm2:135m", tools=[CUSTOMER], tool_choice="required", temperature=0, max_tokens=120,
            messages=[{"role": "user", "content": "Create a customer named 'Acme Acme Acme' - a company"}],
            extra_body=extra)
        return json.loads(r.choices[0].message.tool_calls[0].function.arguments)

    assert call() == call(repeat_penalty=1.0)
    assert call() != call(repeat_penalty=3.0)


def test_a_tool_result_in_the_history_gets_an_answer(openai_client):
    call = {"id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": json.dumps({"city": "Paris", "unit": "celsius"})}}
    history = ASK + [{"role": "assistant", "content": None, "tool_calls": [call]},
                     {"role": "tool", "tool_call_id": "call_1", "content": "18 degrees and sunny"}]
    r = openai_client.chat.completions.create(model="smollm2:135m", messages=history, tools=[WEATHER],
                                              tool_choice="none", temperature=0, max_tokens=40)
    assert r.choices[0].finish_reason in ("stop", "length")
    assert r.choices[0].message.content and not r.choices[0].message.tool_calls


def test_auto_lets_the_model_choose_and_never_fails(openai_client):
    """Whatever the small model writes under "auto" is an answer or a call, never a 500 or a leaked half call."""
    for prompt in ("What is the weather in Paris?", "Tell me a joke.", "北京现在几点？"):
        r = openai_client.chat.completions.create(model="smollm2:135m", tools=[WEATHER, TIME], temperature=0,
                                                  max_tokens=60, messages=[{"role": "user", "content": prompt}])
        message = r.choices[0].message
        if message.tool_calls:
            assert r.choices[0].finish_reason == "tool_calls"
            assert all(c.function.name in SCHEMAS for c in message.tool_calls)
        else:
            assert "<tool_call>" not in (message.content or "") or r.choices[0].finish_reason == "length"


def test_tool_choice_none_answers_in_prose(openai_client):
    r = openai_client.chat.completions.create(model="smollm2:135m", messages=ASK, tools=[WEATHER],
                                              tool_choice="none", temperature=0, max_tokens=30)
    assert not r.choices[0].message.tool_calls and r.choices[0].finish_reason in ("stop", "length")


BAD = [
    ({"tools": [{"type": "function", "function": {"name": "bad name!"}}]}, "tools[0].function.name"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object",
                                                                               "properties": {"a": {"type": 5}}}}}]},
     "not a valid JSON schema"),
    ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "not in tools"),
    ({"tools": [WEATHER] * 2}, "twice"),
    ({"tools": [{"type": "function", "function": {"name": f"f{i}"}} for i in range(129)]}, "at most 128"),
    ({"tools": [{"type": "function", "function": {"name": "f", "description": "x" * 70_000}}]}, "characters of JSON"),
    ({"tool_choice": "required"}, "lists no tools"),
    ({"messages": ASK + [{"role": "tool", "tool_call_id": "call_9", "content": "18"}]}, "no earlier assistant"),
    ({"messages": ASK + [{"role": "tool", "content": "18"}]}, "needs tool_call_id"),
    ({"tools": [WEATHER], "tool_choice": "required", "response_format": {"type": "json_object"}},
     "cannot apply as well"),
]


@pytest.mark.parametrize("extra,words", BAD, ids=[w for _, w in BAD])
def test_bad_tool_requests_get_a_clear_400(server, extra, words):
    body = {"model": "smollm2:135m", "messages": ASK, "max_tokens": 5, **extra}
    r = httpx.post(server.url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"},
                   timeout=60)
    assert r.status_code == 400, r.text
    assert words in r.json()["error"]["message"], r.json()


def test_a_bad_tool_list_is_refused_by_the_sdk_as_bad_request(openai_client):
    with pytest.raises(openai.BadRequestError, match="not in tools"):
        openai_client.chat.completions.create(model="smollm2:135m", messages=ASK, tools=[WEATHER],
                                              tool_choice={"type": "function", "function": {"name": "nope"}})


def test_the_readme_agent_loop_runs_against_the_server(server):
    """The agent loop README.md shows, run as written (its URL and key swapped for this server's)."""
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    block = readme.split("An agent loop with tools", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    code = block.replace("http://127.0.0.1:8000/v1", server.url + "/v1").replace('api_key="unused"', f'api_key="{KEY}"')
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 - our own README's example
    roles = [m["role"] for m in scope["messages"]]
    assert roles[:3] == ["user", "assistant", "tool"] and roles[-1] == "assistant", roles
    assert scope["messages"][2]["content"].startswith("18 degrees and sunny in ")
    assert scope["messages"][-1]["content"]
