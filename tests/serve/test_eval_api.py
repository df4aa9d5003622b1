"""Evaluation reports over HTTP (/v1/evals) and in the web app, against a live `xuetu serve`."""

from __future__ import annotations

import json

import httpx
import pytest

from helpers.browser import BROWSER_ARTIFACTS
from helpers.env import home_env
from serve.conftest import KEY

PLANTED = "<img src=x onerror=\"document.title='pwned'\">"


@pytest.fixture(scope="module")
def report_name(serve_home, tmp_path_factory):
    """A real report written by xuetu eval into the served home, one question carrying planted HTML."""
    from xuetu.evaluate.report import write_eval
    from xuetu.evaluate.run import EvalSpec, evaluate

    data = tmp_path_factory.mktemp("evaldata") / "web-qa.jsonl"
    rows = [{"question": "What is LoRA?", "answer": "A low-rank adapter."},
            {"question": f"Repeat {PLANTED}", "answer": "no"}, {"question": "什么是分词？", "answer": "切分文本。"}]
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    with home_env(serve_home):
        path = write_eval(evaluate(EvalSpec(model="tiny:latest", data=str(data), max_tokens=6), progress=False))
    return path.name


def test_reports_are_listed_and_served(server, report_name):
    auth = {"Authorization": f"Bearer {KEY}"}
    assert httpx.get(server.url + "/v1/evals").status_code == 401  # behind the API key like the rest of /v1
    listed = httpx.get(server.url + "/v1/evals", headers=auth).json()["data"]
    row = next(r for r in listed if r["name"] == report_name)
    assert row["kind"] == "eval" and row["n"] == 3 and row["models"] == ["tiny:latest"]
    one = httpx.get(server.url + f"/v1/evals/{report_name}", headers=auth).json()
    assert one["metrics"]["rougeL"]["low"] <= one["metrics"]["rougeL"]["high"] and len(one["examples"]) == 3
    page = httpx.get(server.url + f"/v1/evals/{report_name}/report.html", headers=auth)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "script-src" not in page.headers["content-security-policy"]  # default-src 'none': no scripts at all
    assert PLANTED not in page.text and "&lt;img src=x" in page.text
    md = httpx.get(server.url + f"/v1/evals/{report_name}/report.md", headers=auth)
    assert md.text.startswith("# Evaluation: tiny:latest")
    for bad in ("nope", "..", "cache", "%2e%2e%2fmodels"):
        r = httpx.get(server.url + f"/v1/evals/{bad}", headers=auth)
        assert r.status_code == 404, bad
    assert httpx.get(server.url + f"/v1/evals/{report_name}/report.exe", headers=auth).status_code == 404


def test_the_web_app_shows_a_report(browser, serve_home, report_name):
    from helpers.server import ServerProcess

    web = ServerProcess(serve_home).wait()
    try:
        context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(web.url + "/#evals")
        page.click("#eval-list button:has-text('web-qa.jsonl')")
        frame = page.frame_locator("#eval-detail iframe.report-frame")
        frame.locator("h1:has-text('Evaluation: tiny:latest')").wait_for()
        assert "ROUGE-L" in frame.locator("table").first.inner_text()
        assert frame.locator("img[alt='scores with 95% intervals']").count() == 1
        assert "Repeat <img src=x" in frame.locator("body").inner_text()  # shown as text, never as markup
        assert page.evaluate("document.querySelector('#eval-detail iframe').sandbox.value") == ""
        assert page.title() != "pwned" and not errors
        page.screenshot(path=str(BROWSER_ARTIFACTS / "eval-report.png"), full_page=True)
        page.click("#lang-button")
        page.wait_for_selector("#tab-evals:has-text('评估')")
        context.close()
    finally:
        web.stop()
