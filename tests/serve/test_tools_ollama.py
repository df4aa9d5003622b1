"""Tool calling through /api/chat, driven by the official ollama SDK against a live `xuetu serve` on the
embedded SmolLM2."""

from __future__ import annotations

import httpx
import ollama
import pytest
from jsonschema import validate

from serve.conftest import KEY


def get_weather(city: str, unit: str) -> str:
    """The current weather in a city.

    Args:
        city: The city's name.
        unit: celsius or fahrenheit.
    """
    return f"18 degrees {unit} and sunny in {city}"


WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The current weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                                                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                   "required": ["city", "unit"]}}}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


def _chat(server, **body):
    return httpx.post(server.url + "/api/chat", headers={"Authorization": f"Bearer {KEY}"}, timeout=120,
                      json={"model": "smollm2:135m", "messages": ASK, "stream": False, **body})


def test_a_python_function_as_tool_with_a_forced_choice_returns_its_call(server, ollama_client):
    """The SDK turns a Python function into a tool; tool_choice (a xuetu extension) forces the call."""
    r = _chat(server, tools=[WEATHER], tool_choice={"type": "function", "function": {"name": "get_weather"}},
              options={"temperature": 0, "num_predict": 120})
    assert r.status_code == 200, r.text
    message = ollama.ChatResponse.model_validate(r.json()).message
    call = message.tool_calls[0]
    assert call.function.name == "get_weather" and isinstance(call.function.arguments, dict)
    validate(dict(call.function.arguments), WEATHER["function"]["parameters"])
    assert r.json()["done_reason"] == "stop"
    assert get_weather(**call.function.arguments).startswith("18 degrees")


def test_a_forced_call_copies_an_argument_from_the_conversation(server):
    """No repeat penalty on a forced call unless asked: the default one made the model write "<string>" here."""
    customer = {"type": "function", "function": {"name": "create_customer", "parameters": {
        "type": "object", "properties": {"customer_name": {"type": "string"}, "description": {"type": "string"}},
        "required": ["customer_name", "description"]}}}
    ask = [{"role": "user", "content": "Create a customer named 'こんにちは株式会社' (Hello Corporation) - a company"}]
    r = _chat(server, messages=ask, tools=[customer], tool_choice="required",
              options={"temperature": 0, "num_predict": 120})
    assert r.status_code == 200, r.text
    args = r.json()["message"]["tool_calls"][0]["function"]["arguments"]
    assert args["customer_name"] == "こんにちは株式会社", args


def test_the_sdk_sends_a_function_as_a_tool_and_reads_the_answer(ollama_client):
    """ollama.chat(tools=[a Python function]) as its README shows; the model may answer or call."""
    r = ollama_client.chat(model="smollm2:135m", messages=ASK, tools=[get_weather],
                           options={"temperature": 0, "num_predict": 60})
    assert r.done and r.message.role == "assistant"
    for call in r.message.tool_calls or []:
        assert call.function.name == "get_weather" and isinstance(call.function.arguments, dict)
    if not r.message.tool_calls:
        assert "<tool_call>" not in r.message.content or r.done_reason == "length"


def test_streamed_calls_arrive_whole_before_the_last_line(server):
    body = {"model": "smollm2:135m", "messages": ASK, "tools": [WEATHER], "tool_choice": "required",
            "options": {"temperature": 0, "num_predict": 120}}
    import json

    with httpx.stream("POST", server.url + "/api/chat", json=body, timeout=120,
                      headers={"Authorization": f"Bearer {KEY}"}) as r:
        lines = [json.loads(line) for line in r.iter_lines() if line]
    calls = [c for line in lines for c in line["message"].get("tool_calls") or []]
    assert len(calls) == 1 and calls[0]["function"]["name"] == "get_weather", lines
    validate(calls[0]["function"]["arguments"], WEATHER["function"]["parameters"])
    assert lines[-1]["done"] and not lines[-1]["message"].get("tool_calls")
    assert all("<tool_call>" not in line["message"]["content"] for line in lines)


def test_a_tool_result_goes_back_through_the_sdk(ollama_client):
    history = ASK + [
        {"role": "assistant", "content": "",
         "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}}]},
        {"role": "tool", "tool_name": "get_weather", "content": "18 degrees celsius and sunny"}]
    r = ollama_client.chat(model="smollm2:135m", messages=history, tools=[WEATHER],
                           options={"temperature": 0, "num_predict": 40})
    assert r.done and (r.message.content or r.message.tool_calls)


@pytest.mark.parametrize("body,words", [
    ({"tools": [{"type": "function", "function": {"name": ""}}]}, "tools[0].function.name"),
    ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "not in tools"),
    ({"messages": ASK + [{"role": "tool", "tool_name": "get_weather", "content": "18"}]}, "no earlier assistant"),
])
def test_bad_tool_requests_get_a_clear_400(server, body, words):
    r = _chat(server, **body)
    assert r.status_code == 400 and words in r.json()["error"], r.text
