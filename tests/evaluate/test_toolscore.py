"""Tool-call scoring (tool_name, tool_args, tool_schema) and how reports show calls."""

from __future__ import annotations

import json

import pytest

from helpers.tooldata import TOOLS
from xuetu.evaluate.examples import Example
from xuetu.evaluate.toolscore import per_example, render, shown

PARIS = {"name": "get_weather", "arguments": {"city": "Paris"}}
EUROS = {"name": "convert_currency", "arguments": {"amount": 40, "to": "EUR"}}


def example(calls: list[dict], tools=TOOLS) -> Example:
    return Example(id="0", messages=[{"role": "user", "content": "?"}], reference="" if calls else "Hello!",
                   tools=tools, calls=calls)


@pytest.mark.parametrize("predicted, reference, scores", [
    ([PARIS], [PARIS], (1, 1, 1)),
    ([{**PARIS, "arguments": {"city": "Lima"}}], [PARIS], (1, 0, 1)),  # right tool, wrong value
    ([EUROS, PARIS], [PARIS, EUROS], (1, 1, 1)),  # parallel calls in another order still match
    ([PARIS], [PARIS, EUROS], (0, 0, 1)),  # one of two calls missing
    ([], [PARIS], (0, 0, 1)),  # answered in words where a call was wanted
    ([], [], (1, 1, 1)),  # small talk answered in words
    ([PARIS], [], (0, 0, 1)),  # a call where words were wanted
    ([{"name": "get_weather", "arguments": {"city": 3}}], [PARIS], (1, 0, 0)),  # schema says string
    ([{"name": "launch", "arguments": {}}], [PARIS], (0, 0, 0)),  # a tool nobody offered
])
def test_each_metric_scores_one_example(predicted, reference, scores):
    got = tuple(per_example(m, [predicted], [example(reference)])[0] for m in ("tool_name", "tool_args", "tool_schema"))
    assert got == scores


def test_calls_are_shown_as_a_reader_writes_them():
    assert render([PARIS, EUROS]) == 'get_weather(city="Paris"); convert_currency(amount=40, to="EUR")'
    assert render([{"name": "roll_dice", "arguments": {}}]) == "roll_dice()"
    assert shown("", [{"name": "get_weather", "arguments": {"city": "成都"}}]) == 'called get_weather(city="成都")'
    assert shown("Let me check.", [PARIS]) == 'Let me check.\ncalled get_weather(city="Paris")'
    assert shown("Hello!", None) == "Hello!" and shown("Hello!", []) == "Hello!"


def test_a_tool_file_is_scored_by_the_tool_metrics_and_its_report_shows_both_sides(tiny, tmp_path):
    """The tiny random model never calls a tool: the two call examples score 0 on tool_name, the greeting 1,
    and the report shows the reference's calls where its answer column shows the model's words."""
    from xuetu.evaluate.report import write_eval
    from xuetu.evaluate.run import EvalSpec, evaluate

    call = {"id": "c", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    rows = [{"tools": TOOLS, "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": "",
                                                                          "tool_calls": [call]}]}
            for q in ("Weather in Paris?", "巴黎天气怎么样？")]
    rows.append({"tools": TOOLS, "messages": [{"role": "user", "content": "Hi"},
                                              {"role": "assistant", "content": "Hello!"}]})
    data = tmp_path / "tools.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    result = evaluate(EvalSpec(model="tiny:latest", data=str(data), max_tokens=6), progress=False)
    assert list(result["metrics"]) == ["tool_name", "tool_args", "tool_schema"]
    assert [e["scores"]["tool_name"] for e in result["examples"]] == [0.0, 0.0, 1.0]
    assert result["metrics"]["tool_name"]["value"] == pytest.approx(1 / 3)
    assert result["examples"][0]["calls"] == [PARIS] and "answer_calls" not in result["examples"][0]
    report = (write_eval(result, tmp_path / "report") / "report.md").read_text(encoding="utf-8")
    assert 'called get_weather(city="Paris")' in report
