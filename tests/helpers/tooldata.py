"""A small tool-calling dataset, English and Chinese, for the fine-tune acceptance test and the eval tests.

Four evaluated tools (weather, time, currency, web search) and a pool of others. Each training record offers
the tool it needs among a few others drawn from the pool, so the model learns to read the offered list rather
than memorise one; some records end with the tool's result and an answer built from it (an agent loop), and
small talk calls no tool. The held-out set offers the four evaluated tools, with other cities, amounts and
topics: train and held-out share no (wording, value) pair."""

from __future__ import annotations

import json
import random
from pathlib import Path


def _tool(tool: str, description: str, **props: str) -> dict:
    schema = {"type": "object", "properties": {p: {"type": t} for p, t in props.items()}, "required": list(props)}
    return {"type": "function", "function": {"name": tool, "description": description, "parameters": schema}}


TOOLS = [_tool("get_weather", "Current weather in a city", city="string"),
         _tool("get_time", "Local time in a city", city="string"),
         _tool("convert_currency", "Convert an amount of money", amount="number", to="string"),
         _tool("search_web", "Search the web", query="string")]
OTHERS = [_tool("add_numbers", "Add two integers", a="integer", b="integer"),
          _tool("roll_dice", "Roll a six-sided dice"),
          _tool("get_date", "Today's date"),
          _tool("set_timer", "Start a countdown timer", minutes="integer"),
          _tool("create_contact", "Save a new contact", name="string"),
          _tool("translate_text", "Translate text into English", text="string"),
          _tool("get_stock_price", "Latest price of a stock", symbol="string")]
ASKS = {
    "get_weather": ["What's the weather in {x}?", "Is it raining in {x} now?", "{x}今天天气怎么样？", "{x}现在下雨吗？"],
    "get_time": ["What time is it in {x}?", "Tell me the local time in {x}.", "{x}现在几点？", "{x}的当地时间是多少？"],
    "convert_currency": ["Convert {x} dollars to EUR.", "How much is {x} USD in JPY?", "把{x}美元换成人民币。",
                         "{x}美元等于多少欧元？"],
    "search_web": ["Search the web for {x}.", "Look up {x} online.", "帮我搜索一下{x}。", "上网查查{x}。"],
}
# The pool's requests, each with the arguments it means; several say outright to use the tool, as agents do.
OTHER_ASKS = [
    ("add_numbers", "What is add_numbers(4, 9)? Use the tool.", {"a": 4, "b": 9}),
    ("add_numbers", "Using the tool, add 12 and 30.", {"a": 12, "b": 30}),
    ("add_numbers", "用工具算一下7加8。", {"a": 7, "b": 8}),
    ("roll_dice", "Roll the dice for me.", {}),
    ("roll_dice", "What does roll_dice() give? You must use the tool.", {}),
    ("roll_dice", "帮我掷个骰子。", {}),
    ("roll_dice", "Use the tool to roll a dice.", {}),
    ("get_date", "What is today's date?", {}),
    ("get_date", "What does get_date() return? Use the tool.", {}),
    ("get_date", "今天是几号？", {}),
    ("set_timer", "Set a timer for 15 minutes.", {"minutes": 15}),
    ("set_timer", "Use the tool to start a 5 minute timer.", {"minutes": 5}),
    ("set_timer", "设置一个20分钟的计时器。", {"minutes": 20}),
    ("create_contact", "Save a contact named 'Anna Schmidt'.", {"name": "Anna Schmidt"}),
    ("create_contact", "Add a contact called '王小明'.", {"name": "王小明"}),
    ("create_contact", "新建联系人'李华科技'。", {"name": "李华科技"}),
    ("translate_text", "Translate 'bonjour tout le monde' with the tool.", {"text": "bonjour tout le monde"}),
    ("translate_text", "把'早上好'翻译成英文。", {"text": "早上好"}),
    ("get_stock_price", "What is the stock price of AAPL?", {"symbol": "AAPL"}),
    ("get_stock_price", "Using the tool, get the price of TSLA.", {"symbol": "TSLA"}),
    ("get_stock_price", "查一下NVDA的股价。", {"symbol": "NVDA"}),
]
RESULTS = {"get_weather": ("Sunny, 22°C", "It is sunny in {x}, 22°C.", "{x}现在晴天，22°C。"),
           "get_time": ("14:05", "It is 14:05 in {x}.", "{x}现在是14:05。")}
CURRENCY = {"EUR": "EUR", "JPY": "JPY", "人民币": "CNY", "欧元": "EUR"}
TRAIN_VALUES = {"city": ["Paris", "London", "Tokyo", "Berlin", "Madrid", "Rome", "北京", "上海", "广州", "深圳"],
                "amount": [10, 25, 50, 100, 250], "query": ["LoRA", "quantization", "大模型微调", "Python tutorials"]}
HELD_VALUES = {"city": ["Cairo", "Lima", "Oslo", "成都", "杭州"], "amount": [40, 75, 300],
               "query": ["vector databases", "知识库问答", "GGUF files"]}
CHAT = [("Hello!", "Hello! How can I help you today?"), ("Thank you!", "You're welcome!"),
        ("你好", "你好！有什么可以帮你的吗？"), ("谢谢你", "不客气！"), ("Who are you?", "I am a helpful assistant."),
        ("Tell me a joke.", "Why did the computer go to the doctor? It had a virus."),
        ("你是谁？", "我是一个乐于助人的助手。"), ("Good morning", "Good morning! What can I do for you?")]


def _args(tool: str, ask: str, value) -> dict:
    if tool == "convert_currency":
        to = next((code for word, code in CURRENCY.items() if word in ask), "EUR")
        return {"amount": value, "to": to}
    return {"query": value} if tool == "search_web" else {"city": value}


def _call_turn(name: str, args: dict) -> dict:
    return {"role": "assistant", "content": "", "tool_calls": [
        {"id": "call_0", "type": "function", "function": {"name": name, "arguments": json.dumps(args, ensure_ascii=False)}}]}


def _offer(name: str, rng: random.Random | None) -> list[dict]:
    """What a request is offered. Held out (no rng): the four evaluated tools, as an application offers its
    own. In training, those four with up to two of the pool for their requests, or a pool request's tool among
    up to three others; in a shuffled order, so the model reads the list rather than learning positions."""
    if rng is None:
        return TOOLS
    if any(t["function"]["name"] == name for t in TOOLS):
        offered = [*TOOLS, *rng.sample(OTHERS, rng.randint(0, 2))]
    else:
        needed = next(t for t in OTHERS if t["function"]["name"] == name)
        offered = [needed, *rng.sample([t for t in TOOLS + OTHERS if t is not needed], rng.randint(0, 3))]
    rng.shuffle(offered)
    return offered


def _with_result(template: str, name: str, args: dict, value) -> list[dict]:
    """A call, its result and the answer from it, in the language of the request's wording."""
    result, english, chinese = RESULTS[name]
    answer = (chinese if any("\u4e00" <= ch <= "\u9fff" for ch in template) else english).format(x=value)
    ask = template.format(x=value)
    return [{"role": "user", "content": ask}, _call_turn(name, args),
            {"role": "tool", "tool_call_id": "call_0", "content": result}, {"role": "assistant", "content": answer}]


def records(values: dict, chat: list, seed: int, train: bool) -> list[dict]:
    """Every wording of the evaluated tools with every value; in training also the pool's requests, an
    agent-loop ending on a third of the weather and time calls, and small talk with tools on offer."""
    rng = random.Random(seed)
    out = []
    for tool, templates in ASKS.items():
        key = "amount" if tool == "convert_currency" else "query" if tool == "search_web" else "city"
        for template in templates:
            for value in values[key]:
                ask, args = template.format(x=value), _args(tool, template.format(x=value), value)
                loop = train and tool in RESULTS and rng.random() < 1 / 3
                msgs = _with_result(template, tool, args, value) if loop else [{"role": "user", "content": ask},
                                                                          _call_turn(tool, args)]
                out.append({"tools": _offer(tool, rng if train else None), "messages": msgs})
    if train:
        out += [{"tools": _offer(n, rng), "messages": [{"role": "user", "content": a}, _call_turn(n, args)]}
                for n, a, args in OTHER_ASKS]
    out += [{"tools": _offer(rng.choice(TOOLS)["function"]["name"], rng if train else None),
             "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]} for q, a in chat]
    rng.shuffle(out)
    return out


def write(folder: Path) -> tuple[Path, Path]:
    """train.jsonl (every wording, the train values, the pool, small talk) and heldout.jsonl (other values)."""
    folder.mkdir(parents=True, exist_ok=True)
    train, held = records(TRAIN_VALUES, CHAT[:6], 0, True), records(HELD_VALUES, CHAT[6:], 1, False)
    paths = folder / "train.jsonl", folder / "heldout.jsonl"
    for path, rows in zip(paths, (train, held)):
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return paths
