"""`xuetu quickstart --no-serve` end to end on the embedded model, with a small step budget."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from click.testing import CliRunner

from xuetu.cli import main


@pytest.fixture
def qs_home(xuetu_home, embedded_home):
    xuetu_home.mkdir(parents=True, exist_ok=True)
    shutil.copytree(embedded_home / "models" / "smollm2", xuetu_home / "models" / "smollm2", copy_function=os.link)
    return xuetu_home


@pytest.mark.slow
def test_quickstart_builds_every_stage_and_the_tuned_model_wins(qs_home):
    result = CliRunner().invoke(main, ["quickstart", "--no-serve", "--steps", "30"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    work = qs_home / "quickstart"
    # 1. cleaned data, split into training and held-out questions (both languages held out)
    cleaned = (work / "qa.clean.jsonl").read_text(encoding="utf-8").splitlines()
    held = [json.loads(x) for x in (work / "held-out.jsonl").read_text(encoding="utf-8").splitlines()]
    train = (work / "train.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(cleaned) == 40 and len(held) == 8 and len(train) == 32
    assert any("\u4e00" <= ch <= "\u9fff" for ch in held[-1]["question"]) and held[0]["question"].isascii()
    assert (work / "qa.clean.summary.json").is_file()
    # 2. a run with its metrics and loss curves, and the tuned model in the store
    run = qs_home / "runs" / "ai-tutor-latest"
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "finished" and info["steps"] == 30
    assert (run / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 30
    from xuetu import models

    assert models.resolve("ai-tutor:latest").base == "smollm2:135m"
    # 3. the evaluation: tuned beats base on the held-out questions
    scores = json.loads((run / "report.json").read_text(encoding="utf-8"))
    assert len(scores["tuned"]["answers"]) == 8
    assert scores["tuned"]["perplexity"] < scores["base"]["perplexity"]
    assert scores["tuned"]["rouge_l"] > scores["base"]["rouge_l"]
    assert "| tuned: ai-tutor:latest |" in (run / "report.md").read_text(encoding="utf-8")
    assert "perplexity" in result.output and "is better than the base" in result.output
    # 4. the knowledge base, its sources named by file
    from xuetu.rag import kb

    base = kb.open_kb("ai-tutor")
    try:
        assert len(base.documents) == 10 and "lora.md" in base.documents and "知识库.md" in base.documents
        assert sum(d["chunks"] for d in base.documents.values()) > 10
    finally:
        base.close()
    # A second run reuses the finished model instead of training again.
    again = CliRunner().invoke(main, ["quickstart", "--no-serve"], catch_exceptions=False)
    assert again.exit_code == 0, again.output
    assert "reusing it" in again.output and "training ai-tutor" not in again.output


def test_quickstart_refuses_a_bad_budget(qs_home):
    result = CliRunner().invoke(main, ["quickstart", "--no-serve", "--steps", "0"])
    assert result.exit_code == 1 and "--steps and --minutes must be positive" in result.output
