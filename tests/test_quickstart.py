"""`xuetu quickstart` end to end on the embedded model, with a small step budget: `--no-serve` builds every
stage, then a second run reuses the tuned model, serves it, and the URL it prints opens the web app."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import httpx
import pytest
from click.testing import CliRunner

from helpers.browser import BROWSER_ARTIFACTS
from helpers.server import free_port
from xuetu.cli import main


@pytest.fixture
def qs_home(xuetu_home, embedded_home):
    xuetu_home.mkdir(parents=True, exist_ok=True)
    shutil.copytree(embedded_home / "models" / "smollm2", xuetu_home / "models" / "smollm2", copy_function=os.link)
    return xuetu_home


@pytest.mark.slow
def test_quickstart_builds_every_stage_and_the_tuned_model_wins(qs_home, browser):
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
    # A second run reuses the finished model instead of training again, then serves it: the URL it prints
    # opens the web app on the tuned model with the knowledge base, and the answer cites the example's docs.
    _serve_and_ask(qs_home, browser)


def _serve_and_ask(home, browser):
    port = free_port()
    env = {**os.environ, "XUETU_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "xuetu", "quickstart", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    try:
        url = None
        deadline = time.time() + 300
        while url is None and time.time() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("open http://"):
                url = line.split()[1]
        assert url == f"http://127.0.0.1:{port}/?model=ai-tutor%3Alatest&kb=ai-tutor", "".join(lines)
        out = "".join(lines)
        assert "reusing it" in out and "training ai-tutor" not in out
        while True:  # the server is up once /health answers
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                assert proc.poll() is None and time.time() < deadline, "".join(lines)
                time.sleep(0.3)
        context = browser.new_context(locale="en-US")
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.goto(url)
        page.wait_for_selector("#model-select option[value='ai-tutor:latest']", state="attached")
        page.wait_for_selector("#kb-select option[value='ai-tutor']", state="attached")
        assert page.input_value("#model-select") == "ai-tutor:latest" and page.is_checked("#kb-toggle")
        page.click("#settings summary")
        page.fill("#max-tokens", "48")
        page.dispatch_event("#max-tokens", "input")
        page.fill("#prompt", "What does LoRA train?")
        page.press("#prompt", "Enter")
        page.wait_for_selector("#messages .message.assistant .stats", timeout=240_000)
        answer = page.locator("#messages .message.assistant").last
        assert answer.locator(".content").inner_text().strip()
        assert "lora.md" in answer.locator(".sources").inner_text()
        page.screenshot(path=str(BROWSER_ARTIFACTS / "quickstart.png"), full_page=True)
        context.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_quickstart_refuses_a_bad_budget(qs_home):
    result = CliRunner().invoke(main, ["quickstart", "--no-serve", "--steps", "0"])
    assert result.exit_code == 1 and "--steps and --minutes must be positive" in result.output
