"""xuetu compare and xuetu prompt compare: rows side by side, paired differences, where B wins."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from xuetu.errors import XuetuError
from xuetu.evaluate.compare import compare, pair, write_comparison
from xuetu.evaluate.run import EvalSpec

QA = [{"question": q, "answer": a} for q, a in [
    ("What is LoRA?", "A low-rank adapter trained beside frozen weights."), ("What is a token?", "A piece of text."),
    ("什么是量化？", "用更少的位数保存权重。"), ("Name a colour.", "Blue."), ("What is RAG?", "Retrieval before answering."),
    ("2 + 2 = ?", "4")]]


@pytest.fixture
def qa(tmp_path):
    path = tmp_path / "qa.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in QA), encoding="utf-8")
    return path


@pytest.fixture
def tuned(tiny, tiny_dir, tmp_path):
    from helpers.tiny import build_lora

    from xuetu import models

    return models.create("tuned:latest", build_lora(tiny_dir, tmp_path / "lora", scale=0.3), base="tiny:latest",
                         progress=False)


def test_pair_counts_wins_and_lists_where_b_gains():
    first = {"examples": [{"scores": {"rougeL": v}} for v in (0.1, 0.5, 0.3, 0.2)]}
    other = {"examples": [{"scores": {"rougeL": v}} for v in (0.6, 0.5, 0.1, 0.9)]}
    p = pair(first, other, "rougeL")
    assert (p["wins"], p["ties"], p["losses"]) == (2, 1, 1)
    assert p["gains"] == [3, 0] and p["drops"] == [2]
    assert p["delta"] == pytest.approx((0.5 + 0 - 0.2 + 0.7) / 4)


def test_identical_rows_tie_everywhere(tiny, qa):
    rows = [(name, EvalSpec(model="tiny:latest", data=str(qa), max_tokens=6)) for name in ("a", "b")]
    result = compare(rows, progress=False)
    p = result["pairs"]["b"]
    assert p["ties"] == len(QA) and p["delta"] == 0 and not p["significant"]
    assert result["rows"]["b"]["cached"]  # the same spec twice: answered once


def test_models_side_by_side_with_report(tiny, tuned, qa, tmp_path):
    rows = [(n, EvalSpec(model=n, data=str(qa), max_tokens=8)) for n in ("tiny:latest", "tuned:latest")]
    result = compare(rows, progress=False)
    assert result["models"] == ["tiny:latest", "tuned:latest"] and result["primary"] == "rougeL"
    p = result["pairs"]["tuned:latest"]
    assert p["wins"] + p["ties"] + p["losses"] == len(QA)
    assert all(0 <= i < len(QA) for i in p["gains"] + p["drops"])
    assert any(e["answers"]["tiny:latest"] != e["answers"]["tuned:latest"] for e in result["examples"])
    path = write_comparison(result, tmp_path / "cmp")
    md = (path / "report.md").read_text(encoding="utf-8")
    assert "Paired against tiny:latest" in md and "| tuned:latest |" in md
    assert "data:image/png;base64," in (path / "report.html").read_text(encoding="utf-8")


def test_compare_refuses_what_it_cannot_pair(tiny, qa):
    with pytest.raises(XuetuError, match="at least two"):
        compare([("a", EvalSpec(model="tiny:latest", data=str(qa)))], progress=False)
    with pytest.raises(XuetuError, match="distinct names"):
        compare([("a", EvalSpec(model="tiny:latest", data=str(qa)))] * 2, progress=False)
    with pytest.raises(XuetuError, match="--primary bleu2"):
        compare([(n, EvalSpec(model="tiny:latest", data=str(qa), max_tokens=4)) for n in "ab"], primary="bleu2",
                progress=False)


def test_compare_and_prompt_compare_commands(tiny, tuned, qa, tmp_path):
    from xuetu.cli import main

    out = CliRunner().invoke(main, ["compare", "--models", "tiny:latest,tuned:latest", "--data", str(qa),
                                    "--max-tokens", "6", "-q", "--out", str(tmp_path / "c")])
    assert out.exit_code == 0, out.output
    assert "tuned:latest − tiny:latest" in out.output and (tmp_path / "c" / "report.html").is_file()

    out = CliRunner().invoke(main, ["prompt", "compare", "--model", "tiny:latest", "--data", str(qa),
                                    "--prompts", "vague", "clear", "role", "--max-tokens", "6", "-q"])
    assert out.exit_code == 0, out.output
    assert "clear − vague" in out.output and "role − vague" in out.output and "P(better)" in out.output

    out = CliRunner().invoke(main, ["prompt", "compare", "--model", "tiny:latest", "--data", str(qa),
                                    "--prompts", "vague,nonesuch"])
    assert out.exit_code == 1 and "no prompt template 'nonesuch'" in out.output


def test_pairwise_judge_with_position_swap_in_a_comparison(tiny, tuned, qa, monkeypatch):
    from xuetu.evaluate import judge

    asked = []

    def biased(name):  # a judge that always prefers the first position: every verdict must come out a tie
        def ask(messages):
            asked.append(messages)
            return "Winner: A"
        return ask

    monkeypatch.setattr(judge, "engine_judge", biased)
    rows = [(n, EvalSpec(model=n, data=str(qa), max_tokens=6)) for n in ("tiny:latest", "tuned:latest")]
    result = compare(rows, progress=False, judge={"judge": "any-local-model"})
    j = result["pairs"]["tuned:latest"]["pairwise"]
    assert (j["a"], j["b"], j["tie"], j["inconsistent"]) == (0, 0, len(QA), len(QA))
    assert len(asked) == 2 * len(QA)  # each question in both orders
    compare(rows, progress=False, judge={"judge": "any-local-model"})
    assert len(asked) == 2 * len(QA)  # verdicts cached


def test_a_tool_call_file_is_compared_on_tool_name_accuracy(tiny, tuned, tmp_path):
    """Tool files carry only tool metrics; the pairing takes tool-name accuracy and references show calls."""
    from helpers.tooldata import write

    _, held = write(tmp_path / "tools")
    rows = [(m, EvalSpec(model=m, data=str(held), max_tokens=4, limit=6)) for m in ("tiny:latest", "tuned:latest")]
    result = compare(rows, progress=False)
    assert result["primary"] == "tool_name" and result["pairs"]["tuned:latest"]["metric"] == "tool_name"
    assert all(e["reference"].startswith("called ") for e in result["examples"] if not e["reference"][:1].isupper())
    assert (write_comparison(result, tmp_path / "c") / "report.html").is_file()


def test_a_remote_model_beside_a_local_one_with_its_cost(tiny, qa, tmp_path, monkeypatch):
    """xuetu compare --models REMOTE,LOCAL and xuetu prompt compare on a remote model, against a real HTTP
    provider: answers come from it, the tokens it counted price each row."""
    from helpers.fakeapi import FakeAPI
    from xuetu.cli import main
    from xuetu.models.remote import create_remote

    monkeypatch.setenv("API_KEY_FOR_TEST", "sk-compare-1")
    with FakeAPI(key="sk-compare-1") as fake:
        create_remote("api:echo", url=fake.url, api_model="echo", key_env="API_KEY_FOR_TEST", price_in=2,
                      price_out=8, currency="CNY")
        out = CliRunner().invoke(main, ["compare", "--models", "api:echo,tiny:latest", "--data", str(qa),
                                        "--max-tokens", "6", "-q", "--out", str(tmp_path / "c")])
        assert out.exit_code == 0, out.output
        assert len(fake.chat_requests()) == len(QA)
        result = json.loads((tmp_path / "c" / "report.json").read_text(encoding="utf-8"))
        api = result["rows"]["api:echo"]
        assert api["engine"]["device"] == "remote" and api["usage"]["prompt_tokens"] == 11 * len(QA)
        per_answer = (11 * 2 + api["usage"]["completion_tokens"] / len(QA) * 8) / 1e6
        assert api["cost"]["per_answer"] == pytest.approx(per_answer) and api["cost"]["currency"] == "CNY"
        assert "tiny:latest − api:echo" in out.output and "cost per 1,000 answers" in out.output
        assert f"{per_answer * 1000:.4g} CNY" in out.output and "local" in out.output
        assert "cost per 1,000 answers" in (tmp_path / "c" / "report.md").read_text(encoding="utf-8")

        out = CliRunner().invoke(main, ["prompt", "compare", "--model", "api:echo", "--data", str(qa),
                                        "--prompts", "vague,clear", "--max-tokens", "6", "-q"])
        assert out.exit_code == 0, out.output
        assert "clear − vague" in out.output and len(fake.chat_requests()) == 3 * len(QA)


def test_a_remote_model_cannot_be_scored_by_its_logits(tiny, qa, monkeypatch):
    from helpers.fakeapi import FakeAPI
    from xuetu.errors import BadInput
    from xuetu.evaluate.run import evaluate
    from xuetu.models.remote import create_remote

    with FakeAPI() as fake:
        create_remote("api:echo", url=fake.url, api_model="echo")
        with pytest.raises(BadInput, match="remote model api:echo .* does not give"):
            evaluate(EvalSpec(model="api:echo", data=str(qa), metrics=["perplexity"]), progress=False)
        assert fake.requests == []
