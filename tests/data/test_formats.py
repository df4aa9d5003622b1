import pytest

from xuetu.data import formats
from xuetu.data.formats import FormatError, detect, from_record, to_record

SAMPLES = {
    "messages": {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "什么是 token？"},
                              {"role": "assistant", "content": "文本的最小单位。"}]},
    "sharegpt": {"conversations": [{"from": "human", "value": "What is LoRA?"}, {"from": "gpt", "value": "Low-rank adapters."},
                                   {"from": "human", "value": "And QLoRA?"}, {"from": "gpt", "value": "LoRA on 4-bit weights."}],
                 "system": "You teach AI."},
    "alpaca": {"instruction": "Translate", "input": "你好", "output": "Hello", "system": "Translator",
               "history": [["Hi", "Hello!"]]},
    "qa": {"question": "RAG 是什么？", "answer": "检索增强生成。"},
    "text": {"text": "大模型就像一个聪明的孩子。"},
    "pairs": {"prompt": "怎么骂医生？", "chosen": "我不能帮你骂人，但可以帮你写一封投诉信。", "rejected": "你这个庸医！"},
    "kto": {"prompt": "Say hi", "completion": "Hi!", "label": True},
}


@pytest.mark.parametrize("fmt", list(SAMPLES))
def test_detect_and_round_trip(fmt):
    obj = SAMPLES[fmt]
    assert detect(obj) == fmt
    record = to_record(obj)
    assert record.meta["format"] == fmt
    back = from_record(record, fmt)
    if fmt == "alpaca":  # instruction and input are merged into one user turn
        assert back["output"] == obj["output"] and back["history"] == obj["history"] and back["system"] == obj["system"]
        assert back["instruction"] == "Translate\n你好"
    else:
        assert back == obj


@pytest.mark.parametrize("src", ["messages", "sharegpt", "qa"])
@pytest.mark.parametrize("dst", ["messages", "sharegpt", "alpaca"])
def test_conversions_keep_the_conversation(src, dst):
    record = to_record(SAMPLES[src])
    again = to_record(from_record(record, dst))
    assert again.messages == record.messages and again.system == record.system


def test_canonical_record():
    r = to_record(SAMPLES["sharegpt"])
    assert r.system == "You teach AI." and r.turns == 2
    assert [m["role"] for m in r.messages] == ["user", "assistant", "user", "assistant"]
    r = to_record({"query": "q", "response": "a", "id": 7})
    assert r.messages[0]["content"] == "q" and r.meta["extra"] == {"id": 7}
    assert from_record(r, "qa") == {"question": "q", "answer": "a", "id": 7}


@pytest.mark.parametrize("bad, message", [
    ({"foo": 1}, "unrecognised record"),
    ([1, 2], "expected a JSON object"),
    ({"messages": [{"role": "wizard", "content": "x"}]}, "unknown role"),
    ({"messages": [{"content": "x"}]}, "needs a role"),
    ({"conversations": [{"from": "alien", "value": "x"}]}, "unknown speaker"),
    ({"instruction": ["x"], "output": "y"}, "must be a string"),
    ({"instruction": "x", "output": "y", "history": ["bad"]}, "history"),
])
def test_bad_records(bad, message):
    with pytest.raises(FormatError, match=message):
        to_record(bad)


def test_unconvertible():
    multi = to_record(SAMPLES["sharegpt"])
    with pytest.raises(FormatError, match="one question"):
        from_record(multi, "qa")
    with pytest.raises(FormatError):
        from_record(to_record(SAMPLES["text"]), "alpaca")
    assert set(formats.FORMATS) == set(SAMPLES)
