"""A small tool-calling dataset, English and Chinese, for the fine-tune acceptance test and the eval tests:
four tools, requests that call one of them, and small talk that calls none. Train and held-out sets share no
(wording, value) pair: the held-out set uses other cities, amounts and topics."""

from __future__ import annotations

import json
import random
from pathlib import Path

TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "Current weather in a city",
                                      "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                     "required": ["city"]}}},
    {"type": "function", "function": {"name": "get_time", "description": "Local time in a city",
                                      "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                     "required": ["city"]}}},
    {"type": "function", "function": {"name": "convert_currency", "description": "Convert an amount of money",
                                      "parameters": {"type": "object", "properties": {
                                          "amount": {"type": "number"}, "to": {"type": "string"}},
                                          "required": ["amount", "to"]}}},
    {"type": "function", "function": {"name": "search_web", "description": "Search the web",
                                      "parameters": {"type": "object", "properties": {"query": {"type": "string"}},
                                                     "required": ["query"]}}},
]
ASKS = {
    "get_weather": ["What's the weather in {x}?", "Is it raining in {x} now?", "{x}今天天气怎么样？", "{x}现在下雨吗？"],
    "get_time": ["What time is it in {x}?", "Tell me the local time in {x}.", "{x}现在几点？", "{x}的当地时间是多少？"],
    "convert_currency": ["Convert {x} dollars to EUR.", "How much is {x} USD in JPY?", "把{x}美元换成人民币。",
                         "{x}美元等于多少欧元？"],
    "search_web": ["Search the web for {x}.", "Look up {x} online.", "帮我搜索一下{x}。", "上网查查{x}。"],
}
CURRENCY = {"EUR": "EUR", "JPY": "JPY", "人民币": "CNY", "欧元": "EUR"}
TRAIN_VALUES = {"city": ["Paris", "London", "Tokyo", "Berlin", "Madrid", "Rome", "北京", "上海", "广州", "深圳"],
                "amount": [10, 25, 50, 100, 250], "query": ["LoRA", "quantization", "大模型微调", "Python tutorials"]}
HELD_VALUES = {"city": ["Cairo", "Lima", "Oslo", "成都", "杭州"], "amount": [40, 75, 300],
               "query": ["vector databases", "知识库问答", "GGUF files"]}
CHAT = [("Hello!", "Hello! How can I help you today?"), ("Thank you!", "You're welcome!"),
        ("你好", "你好！有什么可以帮你的吗？"), ("谢谢你", "不客气！"), ("Who are you?", "I am a helpful assistant."),
        ("Tell me a joke.", "Why did the computer go to the doctor? It had a virus."),
        ("你是谁？", "我是一个乐于助人的助手。"), ("Good morning", "Good morning! What can I do for you?")]


def _call(tool: str, ask: str, value) -> dict:
    if tool == "convert_currency":
        to = next((code for word, code in CURRENCY.items() if word in ask), "EUR")
        return {"amount": value, "to": to}
    return {"query": value} if tool == "search_web" else {"city": value}


def _record(ask: str, name: str | None, args: dict | None, answer: str = "") -> dict:
    msgs = [{"role": "user", "content": ask}]
    if name:
        msgs.append({"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_0", "type": "function", "function": {"name": name, "arguments": json.dumps(args, ensure_ascii=False)}}]})
    else:
        msgs.append({"role": "assistant", "content": answer})
    return {"tools": TOOLS, "messages": msgs}


def records(values: dict, asks: slice, chat: list, seed: int) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for tool, templates in ASKS.items():
        key = "amount" if tool == "convert_currency" else "query" if tool == "search_web" else "city"
        for template in templates[asks]:
            for value in values[key]:
                ask = template.format(x=value)
                out.append(_record(ask, tool, _call(tool, ask, value)))
    out += [_record(q, None, None, a) for q, a in chat]
    rng.shuffle(out)
    return out


def write(folder: Path) -> tuple[Path, Path]:
    """train.jsonl (every wording, the train values, small talk) and heldout.jsonl (other values)."""
    folder.mkdir(parents=True, exist_ok=True)
    train = records(TRAIN_VALUES, slice(None), CHAT[:6], 0)
    held = [r for r in records(HELD_VALUES, slice(None), CHAT[6:], 1)]
    paths = folder / "train.jsonl", folder / "heldout.jsonl"
    for path, rows in zip(paths, (train, held)):
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return paths
