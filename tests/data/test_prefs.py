"""Preference data (xuetu.data.prefs): every shape users have becomes the same Record, goes back out as pairs or
kto, and a bad record says what is wrong."""

import pytest

from xuetu.data import prefs
from xuetu.data.formats import FormatError, detect, from_record, outputs, to_record

U, A = "user", "assistant"
Q, GOOD, BAD = "怎么骂医生？", "我不能帮你骂人，但可以帮你写一封投诉信。", "你这个庸医！"
SYS = "You are a polite assistant."
HISTORY = [{"role": U, "content": "Hi"}, {"role": A, "content": "Hello! How can I help?"},
           {"role": U, "content": "What is 2+2?"}]


def msg(role, content):
    return {"role": role, "content": content}


# (name, input, expected messages, expected system, expected rejected content)
PAIRS = [
    ("string prompt", {"prompt": Q, "chosen": GOOD, "rejected": BAD}, [msg(U, Q), msg(A, GOOD)], None, BAD),
    ("prompt as messages with a system message",
     {"prompt": [msg("system", SYS), *HISTORY], "chosen": [msg(A, "4.")], "rejected": [msg(A, "5.")]},
     HISTORY + [msg(A, "4.")], SYS, "5."),
    ("instruction and input", {"instruction": "Translate into English", "input": "你好", "chosen": "Hello",
                               "rejected": "Goodbye", "system": SYS},
     [msg(U, "Translate into English\n你好"), msg(A, "Hello")], SYS, "Goodbye"),
    ("conversations with ShareGPT answers",
     {"conversations": [{"from": "system", "value": SYS}, {"from": "human", "value": "What is 2+2?"}],
      "chosen": {"from": "gpt", "value": "4."}, "rejected": {"from": "gpt", "value": "5."}},
     [msg(U, "What is 2+2?"), msg(A, "4.")], SYS, "5."),
    ("messages and string answers", {"messages": HISTORY, "chosen": "4.", "rejected": "5."},
     HISTORY + [msg(A, "4.")], None, "5."),
    ("OpenAI preference fine-tuning",
     {"input": {"messages": [msg("system", SYS), msg(U, "What is 2+2?")]},
      "preferred_output": [msg(A, "4.")], "non_preferred_output": [msg(A, "5.")]},
     [msg(U, "What is 2+2?"), msg(A, "4.")], SYS, "5."),
    ("TRL implicit prompt", {"chosen": [msg("system", SYS), *HISTORY, msg(A, "4.")],
                             "rejected": [msg("system", SYS), *HISTORY, msg(A, "5.")]},
     HISTORY + [msg(A, "4.")], SYS, "5."),
    ("HH-RLHF multi-turn text",
     {"chosen": "\n\nHuman: Hi\n\nAssistant: Hello! How can I help?\n\nHuman: What is 2+2?\n\nAssistant: 4.",
      "rejected": "\n\nHuman: Hi\n\nAssistant: Hello! How can I help?\n\nHuman: What is 2+2?\n\nAssistant: 5."},
     HISTORY + [msg(A, "4.")], None, "5."),
    ("HH-RLHF text without the leading blank line",
     {"chosen": "Human: What is 2+2?\n\nAssistant: 4.", "rejected": "Human: What is 2+2?\n\nAssistant: 5."},
     [msg(U, "What is 2+2?"), msg(A, "4.")], None, "5."),
    ("UltraFeedback binarized: prompt wins over the chosen conversation in messages",
     {"prompt": "What is 2+2?", "prompt_id": "x1", "messages": [msg(U, "What is 2+2?"), msg(A, "4.")],
      "chosen": [msg(U, "What is 2+2?"), msg(A, "4.")], "rejected": [msg(U, "What is 2+2?"), msg(A, "5.")],
      "score_chosen": 9.0, "score_rejected": 2.0},
     [msg(U, "What is 2+2?"), msg(A, "4.")], None, "5."),
]

# (name, input, expected messages, expected system, expected label)
KTO = [
    ("prompt, completion and label", {"prompt": "Say hi", "completion": "Hi!", "label": True},
     [msg(U, "Say hi"), msg(A, "Hi!")], None, True),
    ("messages and label", {"messages": [msg("system", SYS), msg(U, "Say hi"), msg(A, "Go away.")], "label": False},
     [msg(U, "Say hi"), msg(A, "Go away.")], SYS, False),
    ("LLaMA-Factory kto_tag", {"conversations": [{"from": "human", "value": "Say hi"}, {"from": "gpt", "value": "Hi!"}],
                               "kto_tag": True}, [msg(U, "Say hi"), msg(A, "Hi!")], None, True),
    ("label as CSV text", {"prompt": "Say hi", "completion": "Go away.", "label": "False"},
     [msg(U, "Say hi"), msg(A, "Go away.")], None, False),
    ("prompt messages and completion messages (TRL conversational)",
     {"prompt": [msg(U, "Say hi")], "completion": [msg(A, "Hi!")], "label": "true"},
     [msg(U, "Say hi"), msg(A, "Hi!")], None, True),
]


@pytest.mark.parametrize("name, obj, messages, system, rejected", PAIRS, ids=[p[0] for p in PAIRS])
def test_pair_shapes(name, obj, messages, system, rejected):
    assert detect(obj) == "pairs"
    r = to_record(obj)
    assert r.messages == messages and r.system == system and r.rejected == msg(A, rejected)
    assert r.is_pair and r.label is None and r.rejected_messages() == messages[:-1] + [msg(A, rejected)]
    again = to_record(from_record(r, "pairs"))  # the round trip loses nothing
    assert (again.messages, again.system, again.rejected) == (r.messages, r.system, r.rejected)


@pytest.mark.parametrize("name, obj, messages, system, label", KTO, ids=[k[0] for k in KTO])
def test_kto_shapes(name, obj, messages, system, label):
    assert detect(obj) == "kto"
    r = to_record(obj)
    assert r.messages == messages and r.system == system and r.label is label and r.rejected is None
    out = from_record(r, "kto")
    assert out["label"] is label
    again = to_record(out)
    assert (again.messages, again.system, again.label) == (r.messages, r.system, r.label)


def test_extra_fields_survive_and_used_fields_do_not_repeat():
    r = to_record(PAIRS[-1][1])  # UltraFeedback: its messages are the chosen conversation, not an extra
    assert r.meta["extra"] == {"prompt_id": "x1", "score_chosen": 9.0, "score_rejected": 2.0}
    assert from_record(r, "pairs") == {"prompt": "What is 2+2?", "chosen": "4.", "rejected": "5.", "prompt_id": "x1",
                                       "score_chosen": 9.0, "score_rejected": 2.0}
    r = to_record({"instruction": "Say hi", "input": "", "completion": "Hi!", "label": True, "id": 3})
    assert from_record(r, "kto") == {"prompt": "Say hi", "completion": "Hi!", "label": True, "id": 3}


def test_a_pair_becomes_two_kto_examples_and_not_back():
    pair = to_record({"prompt": [msg("system", SYS), msg(U, Q)], "chosen": GOOD, "rejected": BAD, "id": 1})
    good, bad = outputs(pair, "kto")
    assert good == {"prompt": [msg("system", SYS), msg(U, Q)], "completion": GOOD, "label": True, "id": 1}
    assert bad == {**good, "completion": BAD, "label": False}
    with pytest.raises(FormatError, match="split it with prefs.to_kto"):
        from_record(pair, "kto")
    with pytest.raises(FormatError, match="KTO example .* cannot become a pair"):
        from_record(to_record(good), "pairs")
    with pytest.raises(FormatError, match="only one answer"):
        from_record(to_record({"question": "q", "answer": "a"}), "pairs")
    with pytest.raises(FormatError, match="neither"):
        outputs(to_record({"question": "q", "answer": "a"}), "kto")
    with pytest.raises(FormatError, match=r"preference data \(a chosen/rejected pair\).*pairs or kto"):
        from_record(pair, "messages")


def test_label_that_is_not_true_or_false():
    # a category label on SFT data stays SFT data
    assert detect({"prompt": "2+2?", "completion": "4", "label": "math"}) == "qa"
    with pytest.raises(FormatError, match=r"kto_tag must be true .* got 'yes'"):
        to_record({"messages": [msg(U, "q"), msg(A, "a")], "kto_tag": "yes"})
    with pytest.raises(FormatError, match="kto_tag must be true .* got 1"):
        to_record({"prompt": "q", "completion": "a", "kto_tag": 1})


@pytest.mark.parametrize("obj, message", [
    ({"prompt": "q", "chosen": [msg(U, "only a question")], "rejected": "b"}, "chosen must be an answer"),
    ({"prompt": "q", "chosen": None, "rejected": "b"}, "chosen must be an answer .* got NoneType"),
    ({"prompt": "q", "chosen": "a", "rejected": {"content": "b"}}, r"rejected\[0\] needs a role"),
    ({"prompt": "q", "chosen": "a", "rejected": [msg("wizard", "b")]}, "unknown role 'wizard'"),
    ({"prompt": ["q"], "chosen": "a", "rejected": "b"}, r"prompt\[0\] must be an object"),
    ({"prompt": {"text": "q"}, "chosen": "a", "rejected": "b"}, "prompt must be a string, got dict"),
    ({"prompt": "q", "chosen": "a", "rejected": "b", "system": ["s"]}, "system must be a string"),
    ({"prompt": [msg(U, "q"), msg(A, "a")], "chosen": "a", "rejected": "b"}, "prompt ending in a user turn"),
    ({"prompt": [], "chosen": "a", "rejected": "b"}, "prompt ending in a user turn"),
    ({"chosen": "Sure!", "rejected": "No."}, "needs a prompt.*HH-RLHF"),
    ({"chosen": "\n\nHuman: hi\n\nAssistant: hello", "rejected": "just text"}, "rejected is text but not an HH-RLHF"),
    ({"chosen": "\n\nHuman: hi\n\nAssistant: hello", "rejected": "\n\nHuman: bye\n\nAssistant: hello?"},
     "share the same conversation .* differ at turn 0"),
    ({"chosen": "\n\nHuman: hi", "rejected": "\n\nHuman: hi"}, "must each end with an assistant answer"),
    ({"chosen": [msg(U, "hi"), msg(A, "hello")], "rejected": [msg(U, "yo"), msg(A, "hey")]}, "differ at turn 0"),
    ({"chosen": [msg(U, "hi"), msg(A, "hello")], "rejected": [msg(U, "hi"), msg(U, "hey")]},
     "must each end with an assistant answer"),
    ({"input": {"messages": [msg(U, "q")]}, "preferred_output": "a", "non_preferred_output": 3.5j}, "got complex"),
    ({"prompt": "q", "completion": "a", "label": "true", "messages": "oops"}, None),  # completion wins: reads fine
    ({"messages": [msg(U, "q")], "label": True}, "needs a prompt ending in a user turn and the answer"),
    ({"conversations": [{"from": "gpt", "value": "a"}], "kto_tag": False}, "needs a prompt ending in a user turn"),
])
def test_bad_records_say_what_is_wrong(obj, message):
    if message is None:
        assert to_record(obj).label is True
        return
    with pytest.raises(FormatError, match=message):
        to_record(obj)


@pytest.mark.parametrize("obj, reason, message", [
    ({"prompt": "", "chosen": "a", "rejected": "b"}, "no_question", "prompt is empty"),
    ({"prompt": "  ", "completion": "a", "label": True}, "no_question", "prompt is empty"),
    ({"prompt": "q", "chosen": " ", "rejected": "b"}, "no_answer", "chosen answer is empty"),
    ({"prompt": "q", "chosen": "a", "rejected": ""}, "no_answer", "rejected answer is empty"),
    ({"prompt": "q", "completion": "", "label": False}, "no_answer", "the answer is empty"),
    ({"prompt": "q", "chosen": "same", "rejected": "same "}, "same_answers", "chosen and rejected are the same"),
])
def test_records_that_teach_nothing_carry_a_reason(obj, reason, message):
    with pytest.raises(prefs.PreferenceError, match=message) as e:
        to_record(obj)
    assert e.value.reason == reason


def test_what_dedup_and_the_filters_look_at():
    pair = to_record({"prompt": [msg("system", SYS), msg(U, Q)], "chosen": GOOD, "rejected": BAD})
    assert prefs.dedup_parts(pair) == [f"{SYS}\n{Q}", GOOD, BAD]
    assert prefs.judged_text(pair) == f"{SYS}\n{Q}\n{GOOD}"  # not the rejected answer
    assert prefs.sequences(pair) == [pair.messages, pair.rejected_messages()]
    bad, = [r for r in prefs.to_kto(pair) if r.label is False]
    assert prefs.judged_text(bad) == f"{SYS}\n{Q}" and prefs.dedup_parts(bad) == [f"{SYS}\n{Q}", BAD]
    assert pair.map_text(str.upper).rejected == msg(A, BAD.upper())  # PII masking reaches the rejected answer
