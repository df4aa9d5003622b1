"""The prompt library: every shipped template renders, user templates override by version, errors name the fix."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from xuetu import prompts
from xuetu.cli import main
from xuetu.errors import XuetuError

SAMPLE = {"context": "A student is new to LLMs.", "objective": "Explain LoRA.", "question": "What is LoRA?",
          "examples": [{"question": "2+2?", "answer": "4"}, {"question": "3+3?", "answer": "6"}]}


def test_the_shipped_library_covers_the_seeds_techniques_in_both_languages():
    names = set(prompts.templates())
    for kind in ("co-star", "chain-of-thought", "few-shot", "role", "output-format"):
        assert kind in names and f"{kind}-zh" in names
    assert "vague" in names


@pytest.mark.parametrize("name", sorted(prompts.templates()))
def test_every_shipped_template_renders(name):
    t = prompts.get(name)
    values = {k: v for k, v in SAMPLE.items() if k in t.variables}
    messages = t.render(values)
    assert messages[-1]["role"] == "user" and messages[-1]["content"]
    assert "{{" not in json.dumps(messages, ensure_ascii=False)
    assert (t.language == "zh") == any("\u4e00" <= ch <= "\u9fff" for ch in messages[-1]["content"] + t.description)


def test_rendering_fills_defaults_and_lists():
    co = prompts.get("co-star").render({"context": "C", "objective": "O", "audience": "experts"})
    assert "# AUDIENCE\nexperts" in co[0]["content"] and "# TONE\nfriendly" in co[0]["content"]
    few = prompts.get("few-shot").render({"examples": SAMPLE["examples"], "question": "4+4?"})[0]["content"]
    assert few.index("2+2?") < few.index("3+3?") < few.index("4+4?") and few.rstrip().endswith("Answer:")
    role = prompts.get("role-zh").render({"question": "什么是微调？"})
    assert role[0] == {"role": "system", "content": "你是一位耐心的老师，善于用简单的例子讲解。"}


def test_missing_and_unknown_variables_are_named():
    with pytest.raises(XuetuError, match="needs context, objective") as e:
        prompts.get("co-star").render({})
    assert "--var" in e.value.hint and "the background" in e.value.hint
    with pytest.raises(XuetuError, match="no variable colour"):
        prompts.get("vague").render({"question": "q", "colour": "red"})
    with pytest.raises(XuetuError, match="Did you mean co-star"):
        prompts.get("co-starr")


def test_user_templates_are_added_and_a_higher_version_wins(xuetu_home):
    folder = xuetu_home / "prompts"
    folder.mkdir(parents=True)
    (folder / "mine.yaml").write_text("name: tutor\nversion: 1\nvariables:\n  topic: the topic\n"
                                      "user: 'Teach me {{ topic }} in three steps.'\n", encoding="utf-8")
    (folder / "vague2.yaml").write_text("name: vague\nversion: 2\nvariables: {question: q}\n"
                                        "user: 'Q: {{ question }}'\n", encoding="utf-8")
    assert prompts.get("tutor").render({"topic": "LoRA"})[0]["content"] == "Teach me LoRA in three steps."
    assert prompts.get("vague").version == 2 and prompts.get("vague").render({"question": "x"})[0]["content"] == "Q: x"
    (folder / "bad.yaml").write_text("just: [a, list\n", encoding="utf-8")
    with pytest.raises(XuetuError, match="cannot read the prompt template"):
        prompts.templates()


def test_cli_list_show_render():
    runner = CliRunner()
    res = runner.invoke(main, ["prompt", "list"])
    assert res.exit_code == 0 and "co-star-zh" in res.output and "chain-of-thought" in res.output
    res = runner.invoke(main, ["prompt", "show", "co-star"])
    assert res.exit_code == 0 and "(required)" in res.output and "(default: friendly)" in res.output
    res = runner.invoke(main, ["prompt", "render", "few-shot", "--var", "question=5+5?", "--var",
                               'examples=[{"question": "1+1?", "answer": "2"}]', "--json"])
    assert res.exit_code == 0, res.output
    assert "1+1?" in json.loads(res.output)[0]["content"]
    res = runner.invoke(main, ["prompt", "render", "co-star"])
    assert res.exit_code == 1 and "needs context, objective" in res.output
    res = runner.invoke(main, ["prompt", "render", "vague", "--var", "oops"])
    assert res.exit_code == 2 and "NAME=VALUE" in res.output
