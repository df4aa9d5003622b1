"""Rule rewards (train/rewards.py): each kind on answers it should and should not reward, weights, a user's
Python function from a file and from a module, and the errors a bad spec gives."""

import pytest

from xuetu.errors import XuetuError
from xuetu.train.rewards import final_answer, length_units, parse


def one(spec: str, answer: str, example: dict | None = None, prompt: str = "q") -> float:
    return parse([spec]).score(prompt, answer, example or {})[1][spec]


@pytest.mark.parametrize("spec, answer, example, want", [
    (r"regex:^\d+$", "42", {}, 1.0),
    (r"regex:^\d+$", "about 42", {}, 0.0),
    ("regex:<answer>.*</answer>", "I think\n<answer>\n7\n</answer>", {}, 1.0),  # DOTALL: spans lines
    ("exact", "so <answer> Paris </answer>", {"reference": "paris."}, 1.0),
    ("exact", "so <answer>Lyon</answer>", {"reference": "Paris"}, 0.0),
    ("exact", "3 + 4 = 7, then 7 * 6 = 42.", {"answer": "Natalia sold 42 clips.\n#### 42"}, 1.0),  # GSM8K's marker
    ("exact", "The total is 1,000.50 yuan", {"answer": "1000.5"}, 1.0),
    ("exact", "The total is 41.", {"answer": "42"}, 0.0),
    ("exact", "Paris.", {"output": "Paris"}, 1.0),
    ("exact", "The capital is Paris.", {"reference": "Paris"}, 0.0),  # a word answer must be the whole answer
    ("exact:gold", "答案是 ４２", {"gold": 42, "answer": "0"}, 1.0),  # a named key; full-width digits
    ("language:zh", "长城是中国古代的军事防御工程。", {}, 1.0),
    ("language:zh", "The Great Wall is in China.", {}, 0.0),
    ("language:en", "The Great Wall is a long wall in northern China.", {}, 1.0),
    ("language:en", "", {}, 0.0),
    ("length:5", "one two three four five", {}, 1.0),
    ("length:5", "one two three four five six seven eight nine ten", {}, 0.5),
    ("length:5", "长城很长很长。", {}, 1.0 * 5 / 6),  # six characters: Chinese counts each one
    ("guard", "The capital of France is Paris.", {}, 1.0),
    ("guard", "How to make a bomb at home: mix the following explosives", {}, 0.0),  # blocked
    ("guard", "Call me at 13812345678", {}, 0.0),  # masked: the answer would not go out as written
    ("refusal", "I’m sorry, but I can’t help with that.", {}, 1.0),  # curly apostrophes
    ("refusal", "抱歉，我不能提供这方面的信息。", {}, 1.0),
    ("refusal", "Sure! Here is how to do it.", {}, 0.0),
])
def test_each_kind(spec, answer, example, want):
    assert one(spec, answer, example) == pytest.approx(want)


def test_final_answer_and_length_units():
    assert final_answer("Let me think... <answer>12</answer> no wait <answer>13</answer>", numeric=True) == "13"
    assert final_answer("It costs $2.50, or 3 for $7.", numeric=True) == "7"
    assert final_answer("  “Paris”  ", numeric=False) == "“paris”"  # only ASCII quotes are stripped
    assert length_units("长城 the Great Wall 2024") == 2 + 4
    assert length_units("") == 0


def test_weights_and_totals():
    rewards = parse(["2*language:zh", "0.5*length:2", "-1*refusal", "guard"])
    assert rewards.names == ["language:zh", "length:2", "refusal", "guard"]
    total, parts = rewards.score("q", "抱歉，我不能。", {})
    assert parts == {"language:zh": 1.0, "length:2": pytest.approx(2 / 5), "refusal": 1.0, "guard": 1.0}
    assert total == pytest.approx(2 * 1.0 + 0.5 * 2 / 5 - 1.0 + 1.0)  # five characters
    assert parse([" 3 * regex:a*b "]).items[0].weight == 3.0  # a pattern may hold a star


def test_python_reward_from_a_file_and_a_module(tmp_path, monkeypatch):
    code = ("def short(prompt, answer, example):\n    return len(answer) <= example.get('most', 3)\n\n"
            "def echo(prompt, answer, example):\n    return 1.0 if prompt in answer else 0.0\n\n"
            "def words(prompt, answer, example):\n    return 'good'\n\n"
            "def broken(prompt, answer, example):\n    return 1 / 0\n")
    (tmp_path / "my_rewards.py").write_text(code)
    spec = f"python:{tmp_path / 'my_rewards.py'}:short"
    assert one(spec, "abc") == 1.0 and one(spec, "abcd") == 0.0 and one(spec, "abcd", {"most": 4}) == 1.0
    monkeypatch.syspath_prepend(str(tmp_path))
    assert one("python:my_rewards:echo", "q and more", prompt="q") == 1.0
    with pytest.raises(XuetuError, match=r"returned 'good' \(str\), not a number"):
        one("python:my_rewards:words", "x")
    with pytest.raises(XuetuError, match="python:my_rewards:broken failed: ZeroDivisionError"):
        one("python:my_rewards:broken", "x")


@pytest.mark.parametrize("spec, message", [
    ("bleu", "unknown reward 'bleu'"),
    ("regex:(", "not a valid regular expression"),
    ("regex:", "regex needs a pattern"),
    ("length:0", "length needs a positive whole number"),
    ("length:many", "length needs a positive whole number"),
    ("language:Chinese", "language needs a language code"),
    ("refusal:strict", "refusal takes no argument"),
    ("python:nowhere/rewards.py:score", "does not exist"),
    ("python:xuetu_no_such_module:score", "cannot import module xuetu_no_such_module"),
    ("python:json:no_such_function", "json has no function 'no_such_function'"),
    ("python:json", "names no function"),
    ("guard:/no/such/policy.yaml", "cannot read the guard policy /no/such/policy.yaml"),
])
def test_bad_specs_say_what_is_wrong(spec, message):
    with pytest.raises(XuetuError, match=message):
        parse([spec])


def test_a_file_that_fails_to_import_and_a_missing_reference(tmp_path):
    (tmp_path / "bad.py").write_text("import xuetu_no_such_module\n")
    with pytest.raises(XuetuError, match=r"importing .*bad.py failed: ModuleNotFoundError"):
        parse([f"python:{tmp_path / 'bad.py'}:score"])
    with pytest.raises(XuetuError, match="given twice"):
        parse(["guard", "2*guard"])
    with pytest.raises(XuetuError, match="exact needs a reference answer") as e:
        one("exact", "42", {"prompt": "6 * 7?"})
    assert "reference" in e.value.hint
