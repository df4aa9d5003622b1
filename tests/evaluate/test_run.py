"""xuetu eval: answers (batched through the serving runner), scores with intervals, the cache, reports."""

from __future__ import annotations

import json

import pytest

from xuetu.errors import XuetuError
from xuetu.evaluate.report import write_eval
from xuetu.evaluate.run import EvalSpec, evaluate

QA = [{"question": "What is LoRA?", "answer": "A low-rank adapter.", "keywords": ["low-rank", "adapter"]},
      {"question": "什么是分词器？", "answer": "把文本切成 token 的工具。", "keywords": "token,分词"},
      {"question": "Name a colour.", "answer": "Blue."},
      {"question": "2 + 2 = ?", "answer": "4"}]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def qa(tmp_path):
    return write_jsonl(tmp_path / "qa.jsonl", QA)


def test_scores_every_example_with_intervals_and_caches(tiny, qa):
    spec = EvalSpec(model="tiny:latest", data=str(qa), max_tokens=8, batch=3)
    first = evaluate(spec, progress=False)
    assert first["n"] == 4 and not first["cached"] and first["engine"]["engine"] == "transformers"
    assert list(first["metrics"]) == ["rougeL", "bleu", "token_f1", "exact_match", "keyword_hit"]
    for row in first["metrics"].values():
        assert row["low"] <= row["value"] + 1e-9 and row["value"] <= row["high"] + 1e-9
    assert all(set(e["scores"]) == set(first["metrics"]) for e in first["examples"])
    assert first["latency"]["concurrency"] == 3 and first["latency"]["p50"] > 0

    again = evaluate(spec, progress=False)
    assert again["cached"] and [e["answer"] for e in again["examples"]] == [e["answer"] for e in first["examples"]]
    assert again["metrics"] == first["metrics"]

    assert not evaluate(EvalSpec(model="tiny:latest", data=str(qa), max_tokens=8, batch=3, fresh=True),
                        progress=False)["cached"]
    assert not evaluate(EvalSpec(model="tiny:latest", data=str(qa), max_tokens=9), progress=False)["cached"]
    assert not evaluate(EvalSpec(model="tiny:latest", data=str(qa), max_tokens=8, prompt="role"),
                        progress=False)["cached"]
    write_jsonl(qa, QA[:3] + [{"question": "2 + 2 = ?", "answer": "four"}])  # changed data: no stale answers
    assert not evaluate(spec, progress=False)["cached"]


def test_batched_answers_equal_one_at_a_time(tiny, qa):
    from xuetu import engines
    from xuetu.engines.base import GenerateOptions
    from xuetu.evaluate.generate import Models

    prompts = [[{"role": "user", "content": r["question"]}] for r in QA]
    opts = GenerateOptions(temperature=0, max_tokens=12, repeat_penalty=1.0)
    with Models(batch=4) as pool:
        batched = pool.answer("tiny:latest", prompts, opts)
    engine = engines.load("tiny:latest", engine="transformers")
    single = ["".join(c.text for c in engine.generate(p, opts)).strip() for p in prompts]
    assert [g.text for g in batched] == single
    assert all(g.completion_tokens > 0 and g.seconds > 0 for g in batched)


def test_lora_adapter_shares_its_base_and_differs_from_it(tiny, tiny_dir, tmp_path, qa):
    from helpers.tiny import build_lora

    from xuetu import engines, models
    from xuetu.engines.base import GenerateOptions
    from xuetu.evaluate.generate import Models

    models.create("tuned:latest", build_lora(tiny_dir, tmp_path / "lora", scale=0.3), base="tiny:latest",
                  progress=False)
    prompts = [[{"role": "user", "content": r["question"]}] for r in QA]
    opts = GenerateOptions(temperature=0, max_tokens=10, repeat_penalty=1.0)
    with Models() as pool:
        base = [g.text for g in pool.answer("tiny:latest", prompts, opts)]
        tuned = [g.text for g in pool.answer("tuned:latest", prompts, opts)]
        assert len(pool._loaded) == 1  # one base in memory, the adapter rides on it
    engine = engines.load("tuned:latest", engine="transformers")
    assert tuned == ["".join(c.text for c in engine.generate(p, opts)).strip() for p in prompts]
    assert tuned != base


def test_reports_are_written_as_markdown_html_and_json(tiny, qa, tmp_path):
    result = evaluate(EvalSpec(model="tiny:latest", data=str(qa), max_tokens=6), progress=False)
    path = write_eval(result, tmp_path / "report")
    md = (path / "report.md").read_text(encoding="utf-8")
    html = (path / "report.html").read_text(encoding="utf-8")
    assert "| ROUGE-L |" in md and "什么是分词器？" in md and "![scores" in md
    assert "data:image/png;base64," in html and "<table>" in html
    assert json.loads((path / "report.json").read_text())["metrics"]["rougeL"]["value"] == result["metrics"]["rougeL"]["value"]
    assert (path / "scores.png").stat().st_size > 1000


def test_classification_report_has_a_confusion_matrix(tiny, tmp_path):
    data = write_jsonl(tmp_path / "cls.jsonl", [
        {"question": f"Is this review positive or negative? {t}", "answer": lab, "label": lab}
        for t, lab in [("Great!", "positive"), ("Awful.", "negative"), ("Loved it", "positive"), ("Bad", "negative")]])
    result = evaluate(EvalSpec(model="tiny:latest", data=str(data), max_tokens=4), progress=False)
    assert "classification" in result["metrics"]
    rep = result["metrics"]["classification"]["report"]
    assert set(rep["confusion"]["labels"]) >= {"negative", "positive"}
    assert sum(map(sum, rep["confusion"]["matrix"])) == 4
    path = write_eval(result, tmp_path / "r")
    assert (path / "confusion.png").is_file()
    assert "macro" in (path / "report.md").read_text()


def test_to_label_reads_the_label_an_answer_gives():
    from xuetu.evaluate.scoring import OTHER, to_label

    labels = ["negative", "positive"]
    assert to_label("Positive.", labels) == "positive"
    assert to_label("I think it is negative, not positive", labels) == "negative"
    assert to_label("no idea", labels) == OTHER


def test_bad_input_is_refused_with_a_hint(tiny, tmp_path, qa):
    with pytest.raises(XuetuError, match="does not exist"):
        EvalSpec(model="tiny:latest", data=str(tmp_path / "missing.jsonl"))
    with pytest.raises(XuetuError, match="unknown metric 'rogue'") as e:
        EvalSpec(model="tiny:latest", data=str(qa), metrics=["rogue"])
    assert "rouge" in e.value.hint
    text = tmp_path / "notes.txt"
    text.write_text("just some text\n", encoding="utf-8")
    with pytest.raises(XuetuError, match="no question/answer examples") as e:
        evaluate(EvalSpec(model="tiny:latest", data=str(text)), progress=False)
    assert "perplexity" in e.value.hint
    half = write_jsonl(tmp_path / "half.jsonl", [{"messages": [{"role": "user", "content": "hi"}]}])
    with pytest.raises(XuetuError, match="half.jsonl:1: an evaluation example needs"):
        evaluate(EvalSpec(model="tiny:latest", data=str(half)), progress=False)
    with pytest.raises(XuetuError, match="has no `question` variable"):
        evaluate(EvalSpec(model="tiny:latest", data=str(qa), prompt="co-star"), progress=False)
    with pytest.raises(XuetuError, match="needs a judge model"):
        evaluate(EvalSpec(model="tiny:latest", data=str(qa), metrics=["judge"]), progress=False)
    with pytest.raises(XuetuError, match="keywords"):
        evaluate(EvalSpec(model="tiny:latest", data=str(write_jsonl(tmp_path / "k.jsonl", QA[2:])),
                          metrics=["keyword_hit"]), progress=False)


def test_an_over_long_prompt_fails_its_example_not_the_run(tiny, tmp_path):
    data = write_jsonl(tmp_path / "long.jsonl", [{"question": "word " * 5000, "answer": "x"}, QA[0]])
    result = evaluate(EvalSpec(model="tiny:latest", data=str(data), max_tokens=4), progress=False)
    assert result["errors"] == 1 and "tokens" in result["examples"][0]["error"]
    assert result["examples"][1]["answer"] is not None and "error" not in result["examples"][1]


def test_judge_scores_join_the_report_and_are_cached(tiny, qa, monkeypatch):
    from xuetu.evaluate import judge

    calls = []

    def fake_engine_judge(name):  # the plumbing under test; judge.pointwise itself is tested in test_judge.py
        def ask(messages):
            calls.append(messages)
            return "Score: 7" if "LoRA" in messages[0]["content"] else "no idea"
        return ask

    monkeypatch.setattr(judge, "engine_judge", fake_engine_judge)
    spec = EvalSpec(model="tiny:latest", data=str(qa), max_tokens=4, judge="tiny:latest")
    result = evaluate(spec, progress=False)
    assert result["metrics"]["judge"]["value"] == 7.0 and result["metrics"]["judge"]["unparsed"] == 3
    assert [e["scores"]["judge"] for e in result["examples"]] == [7.0, None, None, None]
    n = len(calls)
    evaluate(spec, progress=False)
    assert len(calls) == n  # judged answers come from the cache


def test_a_gguf_base_is_evaluated_on_the_engine_that_serves_it(smollm2, tmp_path):
    from click.testing import CliRunner

    from xuetu.cli import main

    data = write_jsonl(tmp_path / "two.jsonl", QA[:2])
    out = CliRunner().invoke(main, ["eval", "smollm2:135m", "--data", str(data), "--max-tokens", "8", "-q",
                                    "--metrics", "rougeL,bleu", "--out", str(tmp_path / "r")])
    assert out.exit_code == 0, out.output
    assert "ROUGE-L" in out.output and "report:" in out.output
    result = json.loads((tmp_path / "r" / "report.json").read_text(encoding="utf-8"))
    assert result["engine"]["engine"] == "llama.cpp" and list(result["metrics"]) == ["rougeL", "bleu"]


def test_multiple_choice_and_perplexity_through_eval(smollm2, tmp_path):
    from xuetu.evaluate.choice import SAMPLES

    result = evaluate(EvalSpec(model="smollm2:135m", data=str(SAMPLES / "ceval_sample.csv"), metrics=["choice"]),
                      progress=False)
    row = result["metrics"]["choice"]
    assert result["n"] == 10 and 0 <= row["low"] <= row["value"] <= row["high"] <= 1
    assert sum(s["n"] for s in row["per_subject"].values()) == 10
    text = tmp_path / "t.txt"
    text.write_text("The cat sat on the mat. " * 20, encoding="utf-8")
    ppl = evaluate(EvalSpec(model="smollm2:135m", data=str(text), metrics=["perplexity"]), progress=False)
    assert 1 < ppl["metrics"]["perplexity"]["value"] < 50 and ppl["n"] == 1
    path = write_eval(ppl, tmp_path / "ppl")
    assert "perplexity" in (path / "report.md").read_text(encoding="utf-8")


def test_evaluation_works_inside_a_running_event_loop(tiny, qa):
    """As in a Jupyter notebook, or next to Playwright's sync API."""
    import asyncio

    async def inside():
        return evaluate(EvalSpec(model="tiny:latest", data=str(qa), max_tokens=4), progress=False)

    assert asyncio.run(inside())["n"] == 4


def test_the_judge_api_key_never_reaches_the_report(tiny, qa, tmp_path, monkeypatch):
    from xuetu.evaluate import judge

    monkeypatch.setattr(judge, "api_judge", lambda model, url, key: (lambda messages: "Score: 5"))
    result = evaluate(EvalSpec(model="tiny:latest", data=str(qa), max_tokens=4, judge="gpt-x",
                               judge_url="http://127.0.0.1:9/v1", judge_key="sk-secret-123"), progress=False)
    path = write_eval(result, tmp_path / "r")
    assert result["metrics"]["judge"]["value"] == 5.0
    assert all("sk-secret-123" not in f.read_text(encoding="utf-8") for f in path.iterdir() if f.suffix != ".png")
