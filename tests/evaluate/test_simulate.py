"""Simulated user tests: scripted conversations pass and fail as planted, against a real xuetu serve."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from xuetu.errors import XuetuError
from xuetu.evaluate import simulate as sim

SCRIPT = """
conversations:
  - name: capital
    turns:
      - user: Name the capital of France.
        expect: {contains: [Paris], language: en, max_chars: 400}
      - user: Say it again in one short sentence.
        expect: {any_of: [Paris, France]}
  - name: planted failures
    turns:
      - user: Name the capital of France.
        expect: {contains: [Berlin], not_contains: [Paris], max_chars: 5, language: zh, regex: "^\\\\d+$"}
"""


def test_each_check_passes_and_fails():
    assert sim.check("The capital of France is Paris.", {"contains": ["paris", "France"], "language": "en",
                                                         "regex": r"Paris\.$", "max_chars": 40}) == []
    bad = dict(sim.check("The capital is Paris.", {"contains": ["Lyon"], "any_of": ["Rome", "Oslo"],
                                                  "not_contains": ["paris"], "max_chars": 5, "language": "zh"}))
    assert set(bad) == {"contains", "any_of", "not_contains", "max_chars", "language"}
    assert bad["max_chars"] == "21 characters, more than 5" and bad["language"] == "in en, not zh"
    assert sim.check("LoRA 只训练两个小矩阵。", {"language": "zh"}) == []
    assert dict(sim.check("No sources here.", {"cites": True}))["cites"] == "cites no source as [n]"
    assert sim.check("It adds matrices [1].", {"cites": True}, [{"n": 1, "cited": True}]) == []
    assert "not among the sources" in dict(sim.check("See [3].", {"cites": True}, [{"n": 1, "cited": False}]))["cites"]


def test_bad_scripts_are_refused(tmp_path):
    cases = {"conversations: []": "no conversations", "conversations: [{name: a}]": "has no turns",
             "conversations: [{turns: [{expect: {}}]}]": "no `user:` text",
             "conversations: [{turns: [{user: hi, expect: {smells: good}}]}]": "unknown check smells",
             "conversations: [{turns: [{user: hi, expect: {regex: '('}}]}]": "bad regex", "a: [": "cannot read"}
    for text, match in cases.items():
        (tmp_path / "s.yaml").write_text(text, encoding="utf-8")
        with pytest.raises(XuetuError, match=match):
            sim.load(tmp_path / "s.yaml")


def test_against_a_served_model_with_the_cli(smollm2_home, xuetu_home, tmp_path):
    from helpers.server import ServerProcess

    (tmp_path / "script.yaml").write_text(SCRIPT, encoding="utf-8")
    server = ServerProcess(xuetu_home).wait()
    try:
        res = CliRunner().invoke(__import__("xuetu.cli", fromlist=["main"]).main,
                                 ["simulate", str(tmp_path / "script.yaml"), "--model", "smollm2:135m", "--url",
                                  server.url + "/v1", "--report", str(tmp_path / "r.json"), "-q"])
    finally:
        server.stop()
    assert res.exit_code == 1, res.output  # the planted failures fail the run
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["turns"] == 3 and report["passed"] == 2, report
    failed = {f["check"] for f in report["failures"]}
    assert failed == {"contains", "not_contains", "max_chars", "language", "regex"}
    assert all(f["conversation"] == "planted failures" for f in report["failures"])
    assert "2/3 turns passed (67%)" in res.output and "FAIL planted failures · turn 1 · contains" in res.output


def test_an_unreachable_server_is_named():
    with pytest.raises(XuetuError, match="cannot reach http://127.0.0.1:9/v1"):
        sim.run([{"name": "x", "turns": [{"user": "hi"}]}], "m", "http://127.0.0.1:9/v1", progress=False)
