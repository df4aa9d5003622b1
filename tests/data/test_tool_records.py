"""Tool-calling records: OpenAI messages and LLaMA-Factory ShareGPT files load into the canonical Record,
convert both ways without loss, fail with errors that say where, and survive `xuetu data clean`."""

import copy
import json

import pytest
from click.testing import CliRunner

import xuetu.data
from xuetu.cli import main
from xuetu.data.clean import CleanArgs, clean
from xuetu.data.formats import FormatError, from_record, to_record
from xuetu.data.normalize import normalize
from xuetu.data.record import Record
from xuetu.errors import XuetuError

WEATHER = {"name": "get_weather", "description": "查询城市天气",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
SEARCH = {"name": "search_flights", "description": "Search flights between two cities",
          "parameters": {"type": "object", "properties": {"from": {"type": "string"}, "to": {"type": "string"}}}}
TOOLS = [{"type": "function", "function": WEATHER}, {"type": "function", "function": SEARCH}]


def dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def write_jsonl(path, rows):
    path.write_text("".join(dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def lines(path):
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


# OpenAI messages: arguments as a JSON string (the wire shape), content null on the calling turn, tools a list.
OPENAI = {"messages": [
    {"role": "system", "content": "你是出行助手。"},
    {"role": "user", "content": "明天北京天气怎么样？"},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_wx1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"北京\"}"}}]},
    {"role": "tool", "tool_call_id": "call_wx1", "content": "晴，最高 25 度，微风。"},
    {"role": "assistant", "content": "明天北京晴，最高 25 度，适合出行。"}], "tools": TOOLS, "id": 7}

# LLaMA-Factory ShareGPT: function_call values and tools are JSON strings, tools are bare function objects.
SHAREGPT = {"conversations": [
    {"from": "human", "value": "帮我查一下上海的天气。"},
    {"from": "function_call", "value": dumps({"name": "get_weather", "arguments": {"city": "上海"}})},
    {"from": "observation", "value": "{\"weather\": \"小雨\", \"temperature\": 18}"},
    {"from": "gpt", "value": "上海今天有小雨，气温 18 度，出门记得带伞。"}],
    "system": "你是一个乐于助人的助手。", "tools": dumps([WEATHER])}

# Parallel calls in ShareGPT: one function_call turn holding a list, then one observation per call, in order.
PARALLEL = {"conversations": [
    {"from": "human", "value": "Compare the weather in Paris and in Berlin, then find me a flight."},
    {"from": "function_call", "value": dumps([{"name": "get_weather", "arguments": {"city": "Paris"}},
                                              {"name": "get_weather", "arguments": {"city": "Berlin"}}])},
    {"from": "observation", "value": "Paris: sunny, 24C"},
    {"from": "observation", "value": "Berlin: cloudy, 17C"},
    {"from": "gpt", "value": "Paris is sunny and warmer; let me look for flights."},
    {"from": "function_call", "value": dumps({"name": "search_flights", "arguments": {"from": "Berlin", "to": "Paris"}})},
    {"from": "observation", "value": "LH2228 departs 09:40, 129 EUR"},
    {"from": "gpt", "value": "Lufthansa LH2228 leaves Berlin at 09:40 for 129 EUR."}],
    "tools": dumps([WEATHER, SEARCH])}


def call(call_id, name, arguments):
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


# -- each input shape, read from real files ---------------------------------------------------------------


def test_openai_messages_file(tmp_path):
    [r] = xuetu.data.load(write_jsonl(tmp_path / "tools.jsonl", [OPENAI]))
    assert r.meta["format"] == "messages" and r.meta["extra"] == {"id": 7} and r.system == "你是出行助手。"
    assert r.tools == TOOLS and r.has_tool_calls and r.turns == 2
    assert r.messages == [
        {"role": "user", "content": "明天北京天气怎么样？"},
        {"role": "assistant", "content": "", "tool_calls": [call("call_wx1", "get_weather", {"city": "北京"})]},
        {"role": "tool", "content": "晴，最高 25 度，微风。", "tool_call_id": "call_wx1", "name": "get_weather"},
        {"role": "assistant", "content": "明天北京晴，最高 25 度，适合出行。"}]


def test_openai_variants_arguments_object_tools_string_no_ids(tmp_path):
    obj = {"messages": [
        {"role": "user", "content": "北京和上海哪里更暖和？"},
        {"role": "assistant", "content": "我来查一下。", "tool_calls": [
            {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "北京"}}},
            {"type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"上海\"}"}}]},
        {"role": "tool", "content": "北京 12 度"}, {"role": "tool", "content": "上海 19 度"},
        {"role": "assistant", "content": "上海更暖和。", "tool_calls": []}],
        "tools": dumps([WEATHER])}  # LLaMA-Factory's openai format keeps tools as a JSON string of bare functions
    src = tmp_path / "tools.json"
    src.write_text(dumps([obj]), encoding="utf-8")
    [r] = xuetu.data.load(src)
    assert r.tools == [{"type": "function", "function": WEATHER}]
    assert r.messages[1] == {"role": "assistant", "content": "我来查一下。", "tool_calls": [
        call("call_0", "get_weather", {"city": "北京"}), call("call_1", "get_weather", {"city": "上海"})]}
    assert [(m["tool_call_id"], m["name"]) for m in r.messages[2:4]] == [("call_0", "get_weather"),
                                                                         ("call_1", "get_weather")]
    assert r.messages[4] == {"role": "assistant", "content": "上海更暖和。"}  # an empty tool_calls list is no call


def test_openai_results_out_of_order_and_legacy_function_call():
    obj = {"messages": [
        {"role": "user", "content": "weather in Oslo and Rome?"},
        {"role": "assistant", "content": "", "tool_calls": [call("a", "get_weather", "{\"city\": \"Oslo\"}"),
                                                            call("b", "get_weather", "{\"city\": \"Rome\"}")]},
        {"role": "tool", "tool_call_id": "b", "content": "Rome 21C"},
        {"role": "tool", "content": "Oslo 3C"},  # no id: the earliest call still waiting, a
        {"role": "assistant", "content": "", "function_call": {"name": "search_flights",
                                                               "arguments": "{\"from\": \"Oslo\", \"to\": \"Rome\"}"}},
        {"role": "tool", "content": "SK4711", "name": "search_flights"},
        {"role": "assistant", "content": "Rome is warmer; flight SK4711."}]}
    r = to_record(obj)
    assert [(m["tool_call_id"], m["content"]) for m in r.messages if m["role"] == "tool"] == [
        ("b", "Rome 21C"), ("a", "Oslo 3C"), ("call_0", "SK4711")]
    assert r.messages[4]["tool_calls"] == [call("call_0", "search_flights", {"from": "Oslo", "to": "Rome"})]
    assert to_record(from_record(r, "sharegpt")).messages == r.messages


def test_sharegpt_llama_factory_file(tmp_path):
    src = tmp_path / "glaive_toolcall_zh.json"  # LLaMA-Factory ships such data as a JSON array
    src.write_text(dumps([SHAREGPT]), encoding="utf-8")
    [r] = xuetu.data.load(src)
    assert r.meta == {"source": "glaive_toolcall_zh.json:[0]", "format": "sharegpt"}
    assert r.system == "你是一个乐于助人的助手。" and r.tools == [{"type": "function", "function": WEATHER}]
    assert r.messages == [
        {"role": "user", "content": "帮我查一下上海的天气。"},
        {"role": "assistant", "content": "", "tool_calls": [call("call_0", "get_weather", {"city": "上海"})]},
        {"role": "tool", "content": "{\"weather\": \"小雨\", \"temperature\": 18}", "tool_call_id": "call_0",
         "name": "get_weather"},
        {"role": "assistant", "content": "上海今天有小雨，气温 18 度，出门记得带伞。"}]
    assert r.turns == 2 and r.has_tool_calls


def test_sharegpt_parallel_calls_and_speakers(tmp_path):
    [r] = xuetu.data.load(write_jsonl(tmp_path / "parallel.jsonl", [PARALLEL]))
    assert r.messages[1]["tool_calls"] == [call("call_0", "get_weather", {"city": "Paris"}),
                                           call("call_1", "get_weather", {"city": "Berlin"})]
    results = [(m["tool_call_id"], m["name"], m["content"]) for m in r.messages if m["role"] == "tool"]
    assert results == [("call_0", "get_weather", "Paris: sunny, 24C"), ("call_1", "get_weather", "Berlin: cloudy, 17C"),
                       ("call_2", "search_flights", "LH2228 departs 09:40, 129 EUR")]
    # a gpt turn right before a function_call is the same assistant turn: it speaks, then calls
    assert r.messages[4] == {"role": "assistant", "content": "Paris is sunny and warmer; let me look for flights.",
                             "tool_calls": [call("call_2", "search_flights", {"from": "Berlin", "to": "Paris"})]}
    assert r.turns == 3
    # "function" and "tool" speakers are results too; arguments may be a JSON string inside the call
    other = {"conversations": [{"from": "user", "value": "q"},
                               {"from": "function_call", "value": {"name": "get_weather", "arguments": "{\"city\": \"x\"}"}},
                               {"from": "function", "value": "r1"}, {"from": "tool", "value": {"ok": True}},
                               {"from": "gpt", "value": "a"}]}
    with pytest.raises(FormatError, match=r"conversations\[3\] is a tool result, but no earlier tool call"):
        to_record(other)
    other["conversations"][1]["value"] = [other["conversations"][1]["value"]] * 2
    r = to_record(other)
    assert [m["content"] for m in r.messages if m["role"] == "tool"] == ["r1", "{\"ok\": true}"]
    assert r.messages[1]["tool_calls"][1]["function"]["arguments"] == {"city": "x"}


# -- writing back, and round trips ---------------------------------------------------------------------------


def test_messages_output_is_openai_wire_shape():
    out = from_record(to_record(SHAREGPT), "messages")
    assert out["tools"] == [{"type": "function", "function": WEATHER}]
    assert out["messages"][0] == {"role": "system", "content": "你是一个乐于助人的助手。"}
    assert out["messages"][2]["tool_calls"] == [call("call_0", "get_weather", "{\"city\": \"上海\"}")]
    assert out["messages"][3]["tool_call_id"] == "call_0" and out["messages"][3]["name"] == "get_weather"
    again = from_record(to_record(out), "messages")
    assert again == out


def test_sharegpt_output_is_llama_factory_shape():
    out = from_record(to_record(OPENAI), "sharegpt")
    assert isinstance(out["tools"], str) and json.loads(out["tools"]) == [WEATHER, SEARCH]  # bare functions
    assert [t["from"] for t in out["conversations"]] == ["human", "function_call", "observation", "gpt"]
    # the ids are not call_0, call_1, ...: written so that reading back gives them again
    assert json.loads(out["conversations"][1]["value"]) == {"id": "call_wx1", "name": "get_weather",
                                                            "arguments": {"city": "北京"}}
    assert "tool_call_id" not in out["conversations"][2]  # answers the waiting call: no id needed
    assert out["system"] == "你是出行助手。" and out["id"] == 7
    # LLaMA-Factory input comes back exactly as it was
    assert from_record(to_record(SHAREGPT), "sharegpt") == SHAREGPT
    assert from_record(to_record(PARALLEL), "sharegpt") == PARALLEL


@pytest.mark.parametrize("obj", [OPENAI, SHAREGPT, PARALLEL], ids=["openai", "sharegpt", "parallel"])
def test_round_trips_are_lossless(obj):
    record = to_record(copy.deepcopy(obj))
    for first, second in (("messages", "sharegpt"), ("sharegpt", "messages")):
        again = to_record(from_record(to_record(from_record(record, first)), second))
        assert (again.messages, again.system, again.tools) == (record.messages, record.system, record.tools)
        assert again.meta.get("extra") == record.meta.get("extra")
    assert to_record(copy.deepcopy(obj)).messages == record.messages  # reading did not change the input


def test_round_trip_keeps_unusual_ids_and_links():
    obj = {"messages": [{"role": "user", "content": "两个城市"},
                        {"role": "assistant", "content": "", "tool_calls": [call("call_1", "get_weather", {"city": "甲"}),
                                                                            call("call_0", "get_weather", {"city": "乙"})]},
                        {"role": "tool", "tool_call_id": "call_0", "content": "乙：晴"},
                        {"role": "tool", "tool_call_id": "call_1", "content": "甲：雨"},
                        {"role": "assistant", "content": "甲下雨，乙晴天。"}]}
    record = to_record(obj)
    sg = from_record(record, "sharegpt")
    assert sg["conversations"][2]["tool_call_id"] == "call_0" and "tool_call_id" not in sg["conversations"][3]
    assert to_record(sg).messages == record.messages


@pytest.mark.parametrize("fmt", ["alpaca", "qa", "text"])
def test_other_formats_refuse_tool_records(fmt):
    with pytest.raises(FormatError, match="tool calls need the messages or sharegpt format"):
        from_record(to_record(SHAREGPT), fmt)
    only_tools = {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}],
                  "tools": dumps([WEATHER])}  # offered tools matter even when none is called
    with pytest.raises(FormatError, match="messages or sharegpt"):
        from_record(to_record(only_tools), fmt)
    flat = {**only_tools, "tools": [{"type": "function", **WEATHER}]}  # OpenAI Responses API's flat shape
    assert to_record(flat).tools == [{"type": "function", "function": WEATHER}]
    plain = {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}], "tools": ""}
    assert to_record(plain).tools is None and from_record(to_record(plain), "qa") == {"question": "hi", "answer": "hello"}


# -- the record's text: what dedup, PII and quality checks see ---------------------------------------------


def test_contents_include_calls_and_map_text_leaves_them():
    r = to_record(SHAREGPT)
    assert "get_weather {\"city\": \"上海\"}" in r.contents()
    upper = r.map_text(str.upper)
    assert upper.messages[1]["tool_calls"] == r.messages[1]["tool_calls"] and upper.tools == r.tools
    assert upper.messages[2]["tool_call_id"] == "call_0" and upper.messages[2]["name"] == "get_weather"
    english = to_record(PARALLEL).map_text(str.upper)
    assert english.messages[0]["content"].startswith("COMPARE THE WEATHER")
    assert english.messages[1]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": {"city": "Paris"}}
    plain = Record(messages=[{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}])
    assert not plain.has_tool_calls and plain.tools is None and plain.contents() == ["q", "a"]


# -- errors say what is wrong and where ----------------------------------------------------------------------


def messages_with(assistant=None, tool=None, tools=None):
    assistant = assistant or {"role": "assistant", "content": "", "tool_calls": [call("c1", "get_weather", {"city": "x"})]}
    obj = {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}, assistant,
                        tool or {"role": "tool", "tool_call_id": "c1", "content": "r"},
                        {"role": "assistant", "content": "a"}]}
    if tools is not None:
        obj["tools"] = tools
    return obj


BAD = [
    (messages_with({"role": "assistant", "content": "", "tool_calls": {"name": "get_weather"}}),
     r"messages\[2\]\.tool_calls must be a list of calls, got dict"),
    (messages_with({"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"arguments": "{}"}}]}),
     r"messages\[2\]\.tool_calls\[0\]\.function\.name is missing"),
    (messages_with({"role": "assistant", "content": "", "tool_calls": [call("c1", "get_weather", "[1, 2]")]}),
     r"messages\[2\]\.tool_calls\[0\]\.function\.arguments is not a JSON object \(got list\)"),
    (messages_with({"role": "assistant", "content": "", "tool_calls": [call("c1", "get_weather", "{city: 北京")]}),
     r"messages\[2\]\.tool_calls\[0\]\.function\.arguments is not a JSON object \(invalid JSON\)"),
    (messages_with({"role": "assistant", "content": "", "tool_calls": ["get_weather"]}),
     r"messages\[2\]\.tool_calls\[0\] must be an object"),
    (messages_with(tool={"role": "tool", "tool_call_id": "c9", "content": "r"}),
     r"messages\[3\]\.tool_call_id 'c9' matches no earlier tool call"),
    (messages_with(tool={"role": "tool", "tool_call_id": "c1", "name": "search_flights", "content": "r"}),
     r"messages\[3\]\.name 'search_flights' is not the name of the call it answers \(c1: 'get_weather'\)"),
    (messages_with(tools=[{"type": "function", "function": {"description": "no name"}}]), r"tools\[0\] has no function\.name"),
    (messages_with(tools=dumps([WEATHER, {"description": "no name"}])), r"tools\[1\] has no function\.name"),
    (messages_with(tools="[{\"name\": "), r"tools is not valid JSON"),
    (messages_with(tools=42), r"tools must be a list of tool definitions, got int"),
    ({"conversations": [{"from": "human", "value": "q"}, {"from": "observation", "value": "r"}]},
     r"conversations\[1\] is a tool result, but no earlier tool call is waiting for one"),
    ({"conversations": [{"from": "human", "value": "q"}, {"from": "function_call", "value": "get_weather(城市=北京)"}]},
     r"conversations\[1\]\.value is not valid JSON"),
    ({"conversations": [{"from": "human", "value": "q"}, {"from": "function_call", "value": "{\"arguments\": {}}"}]},
     r"conversations\[1\]\.value\.name is missing"),
    ({"conversations": [{"from": "human", "value": "q"}, {"from": "function_call", "value": "[]"}]},
     r"conversations\[1\]\.value holds no call"),
    ({"conversations": [{"from": "human", "value": "q"},
                        {"from": "function_call", "value": "{\"name\": \"f\", \"arguments\": \"北京\"}"}]},
     r"conversations\[1\]\.value\.arguments is not a JSON object"),
]


@pytest.mark.parametrize("bad, message", BAD, ids=[m.split(" ")[0].replace("\\", "") + str(i) for i, (_, m) in enumerate(BAD)])
def test_bad_tool_records(bad, message):
    with pytest.raises(FormatError, match=message):
        to_record(bad)


def test_load_names_the_line_of_a_bad_record(tmp_path):
    bad = messages_with({"role": "assistant", "content": "", "tool_calls": [call("c1", "get_weather", "\"北京\"")]})
    src = write_jsonl(tmp_path / "bad.jsonl", [OPENAI, bad])
    with pytest.raises(XuetuError, match=r"bad\.jsonl:2: messages\[2\]\.tool_calls\[0\]\.function\.arguments is not a JSON object"):
        list(xuetu.data.load(src))
    assert len(list(xuetu.data.load(src, on_error="skip"))) == 1


# -- the real cleaning pipeline keeps every tool and call ---------------------------------------------------


def tool_rows():
    """Distinct tool conversations, Chinese and English, in both formats, plus an exact duplicate."""
    cities = ["北京", "上海", "广州", "深圳", "杭州"]
    sharegpt = [{"conversations": [
        {"from": "human", "value": f"请问{c}今天需要带伞吗？我下午要去{c}的公园散步。"},
        {"from": "function_call", "value": dumps({"name": "get_weather", "arguments": {"city": c}})},
        {"from": "observation", "value": dumps({"city": c, "weather": w, "rain_probability": p})},
        {"from": "gpt", "value": a}], "tools": dumps([WEATHER])}
        for c, w, p, a in zip(cities, ["小雨", "晴", "雷阵雨", "多云", "阴"], [0.8, 0.0, 0.9, 0.2, 0.4],
                              ["要带伞，下午大概率有小雨。", "不用带伞，今天阳光很好。", "一定带伞，午后有雷阵雨，尽量别在户外久留。",
                               "可以不带，多云转晴，降雨机会很小。", "建议带一把折叠伞，阴天偶尔会飘雨。"])]
    openai = [copy.deepcopy(OPENAI), copy.deepcopy(PARALLEL_AS_MESSAGES)]
    return sharegpt, openai


PARALLEL_AS_MESSAGES = from_record(to_record(PARALLEL), "messages")


def check_kept(kept, fmt):
    for row in kept:
        r = to_record(row)
        assert r.meta["format"] == fmt and r.tools and r.has_tool_calls
        for m in r.messages:
            if m["role"] == "tool":
                assert m["tool_call_id"] and m["name"]


@pytest.mark.parametrize("fmt", ["sharegpt", "messages"])
def test_clean_keeps_tools_and_calls(tmp_path, fmt):
    sharegpt, openai = tool_rows()
    rows = sharegpt if fmt == "sharegpt" else openai
    src = write_jsonl(tmp_path / f"{fmt}.jsonl", rows + rows[:1])
    s = clean(src, tmp_path / "out.jsonl", CleanArgs(pii=True), progress=False)
    kept, rejects = lines(tmp_path / "out.jsonl"), lines(tmp_path / "out.rejects.jsonl")
    assert s.kept == len(rows) and [r["reason"] for r in rejects] == ["exact_duplicate"], rejects
    check_kept(kept, fmt)
    assert [same(row) for row in kept] == [same(row, normalized=True) for row in rows]  # no call lost or changed
    other = "messages" if fmt == "sharegpt" else "sharegpt"
    clean(src, tmp_path / "converted.jsonl", CleanArgs(to=other), progress=False)
    converted = lines(tmp_path / "converted.jsonl")
    check_kept(converted, other)
    assert [same(row) for row in converted] == [same(row, normalized=True) for row in rows]


def same(row, normalized=False):
    """What a cleaned record must keep of its input: everything, with the text normalised (NFKC)."""
    r = to_record(row)
    r = r.map_text(normalize) if normalized else r
    return r.messages, r.tools, r.system


def test_clean_on_tool_records(tmp_path):
    ends_in_call = {"conversations": [{"from": "human", "value": "帮我看看成都的天气，我明天要去成都出差。"},
                                      {"from": "function_call", "value": dumps({"name": "get_weather",
                                                                                "arguments": {"city": "成都"}})}],
                    "tools": dumps([WEATHER])}
    pii = copy.deepcopy(SHAREGPT)
    pii["conversations"][0]["value"] += "我的电话是 13812345678。"
    pii["conversations"][1]["value"] = dumps({"name": "get_weather", "arguments": {"city": "上海", "phone": "13812345678"}})
    bad = {"conversations": [{"from": "human", "value": "q"}, {"from": "observation", "value": "r"},
                             {"from": "gpt", "value": "a"}]}
    src = write_jsonl(tmp_path / "in.jsonl", [ends_in_call, pii, bad])
    s = clean(src, tmp_path / "out.jsonl", CleanArgs(pii=True, on_error="skip"), progress=False)
    kept, rejects = lines(tmp_path / "out.jsonl"), lines(tmp_path / "out.rejects.jsonl")
    assert s.kept == 2 and [(r["reason"], r["source"]) for r in rejects] == [("malformed", "in.jsonl:3")]
    assert "no earlier tool call" in rejects[0]["detail"]
    assert same(kept[0]) == same(ends_in_call, normalized=True)  # ending in a call teaches the call: an answer
    assert kept[0]["conversations"][1] == ends_in_call["conversations"][1]
    assert "[PHONE]" in kept[1]["conversations"][0]["value"]  # contents are masked, call arguments left as they are
    assert json.loads(kept[1]["conversations"][1]["value"])["arguments"]["phone"] == "13812345678"
    assert s.pii["phone"] == 1
    with pytest.raises(XuetuError, match="no record survived"):
        clean(src, tmp_path / "alpaca.jsonl", CleanArgs(to="alpaca", on_error="skip"), progress=False)
    rejects = lines(tmp_path / "alpaca.rejects.jsonl")
    assert [r["reason"] for r in rejects] == ["unconvertible", "unconvertible", "malformed"]
    assert "tool calls need the messages or sharegpt format" in rejects[0]["detail"]


def test_cli_clean_convert_and_stats_on_a_tool_dataset(tmp_path, smollm2):
    sharegpt, _ = tool_rows()
    src = write_jsonl(tmp_path / "sg.jsonl", sharegpt)
    r = CliRunner().invoke(main, ["data", "clean", str(src), str(tmp_path / "out.jsonl"), "-q"])
    assert r.exit_code == 0, r.output
    assert [same(x) for x in lines(tmp_path / "out.jsonl")] == [same(x, normalized=True) for x in sharegpt]
    r = CliRunner().invoke(main, ["data", "convert", str(src), str(tmp_path / "m.jsonl"), "--to", "messages"])
    assert r.exit_code == 0 and "wrote 5 records" in r.output
    assert all(x["tools"] and x["messages"][1]["tool_calls"] for x in lines(tmp_path / "m.jsonl"))
    out = tmp_path / "stats"
    r = CliRunner().invoke(main, ["data", "stats", str(tmp_path / "m.jsonl"), "--out", str(out)])
    assert r.exit_code == 0, r.output
    data = json.loads((out / "stats.json").read_text())
    assert data["records"] == 5 and data["malformed"] == 0 and data["formats"] == {"messages": 5}
    assert data["turns"]["total"] == 10  # the calling turn and the answer
