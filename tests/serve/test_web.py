"""The web app in a real browser: Debian's headless Chromium driven by Playwright, against a live
`xuetu serve` on loopback with the real embedded model. Screenshots go to test-artifacts/web/
(or $XUETU_ARTIFACTS/web). The `browser` fixture is in tests/conftest.py."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from helpers.browser import BROWSER_ARTIFACTS
from helpers.server import ServerProcess
from serve.conftest import KEY

ARTIFACTS = BROWSER_ARTIFACTS
FACT = ("# Zorblax\n\nThe capital city of Zorblax is Quenthar. Quenthar sits on the river Vell and is famous "
        "for its glass bridges.\n")

# Playwright's wait_for_function evaluates its predicate with eval(), which the app's Content-Security-Policy
# forbids. These tests check what the app does; the policy itself, and the app working under it, are checked in
# tests/security/test_web_markup.py, whose browser keeps the policy.
TEST_CSP = {"bypass_csp": True}


@pytest.fixture(scope="module")
def web(serve_home):
    """A server without an API key (the key is tested on its own below)."""
    s = ServerProcess(serve_home, "--max-train-steps", "100000").wait()  # a run that outlasts its cancel test
    yield s
    s.stop()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 860}, **TEST_CSP)
    pg = context.new_page()
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("dialog", lambda d: d.accept())  # confirm() before deleting
    pg.set_default_timeout(30_000)
    yield pg
    pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def _settings(page, **values):
    """Open "System prompt and settings" and set fields, as a person would."""
    if not page.evaluate("document.getElementById('settings').open"):
        page.click("#settings summary")
    for field, value in values.items():
        selector = "#" + field.replace("_", "-")
        page.fill(selector, str(value))
        page.dispatch_event(selector, "input")


def _ask(page, text: str):
    page.fill("#prompt", text)
    page.press("#prompt", "Enter")


def _last_answer(page, timeout=120_000):
    """Wait until the answer being streamed ends (its stats line appears) and return the message element."""
    page.wait_for_selector("#messages .message.assistant:last-child .stats", timeout=timeout)
    return page.locator("#messages .message.assistant").last


def test_the_page_and_its_assets_come_from_the_server(web):
    html = httpx.get(web.url + "/")
    assert html.status_code == 200 and "text/html" in html.headers["content-type"]
    scripts = re.findall(r'(?:src|href)="(/app/[^"]+)"', html.text)
    assert "/app/vendor/marked.js" in scripts and "/app/main.js" in scripts
    for path in scripts:
        assert httpx.get(web.url + path).status_code == 200, path
    # Nothing from the internet: every script, style and import is a local path.
    from xuetu.serve.web import WEB_DIR

    for path in WEB_DIR.iterdir():
        if path.suffix in (".js", ".html", ".css"):
            text = path.read_text(encoding="utf-8")
            assert not re.search(r"""(src|href|from|import)\s*=?\s*["']https?://""", text), path.name
    assert httpx.get(web.url + "/app/nope.js").status_code == 404


def test_chat_streams_markdown_and_keeps_the_conversation(page, web):
    page.goto(web.url + "/?model=smollm2:135m")
    page.wait_for_selector("#model-select option[value='smollm2:135m']", state="attached")
    assert page.input_value("#model-select") == "smollm2:135m"
    _settings(page, temperature=0)  # greedy, so the answer is the model's best one
    _ask(page, "Name the capital of France.")
    page.wait_for_selector("#messages .message.assistant.streaming")
    answer = _last_answer(page)
    assert "Paris" in answer.locator(".content").inner_text()
    stats = answer.locator(".stats").inner_text()
    assert re.search(r"\d+ tokens · [\d.]+ tokens/s · prompt \d+", stats), stats
    assert page.locator("#conversations li").first.inner_text().startswith("Name the capital of France.")

    # Regenerate replaces the answer instead of adding one.
    page.click("#regenerate")
    _last_answer(page)
    assert page.locator("#messages .message.assistant").count() == 1

    # A long answer streams in (the safety guards hold back only the last few dozen characters), and Stop
    # ends it early and keeps what came. Count how often the answer's text changes while it streams.
    _settings(page, max_tokens=400, temperature=0.8)
    page.evaluate("""() => {
        window.__updates = 0;
        new MutationObserver(() => window.__updates++).observe(document.getElementById('messages'),
            {subtree: true, childList: true, characterData: true});
    }""")
    _ask(page, "Write a long story about a dragon who learns to code, in many chapters.")
    page.wait_for_function("document.querySelector('#messages .message.streaming .content')?.innerText.length > 160")
    assert page.evaluate("window.__updates") > 3
    page.click("#stop")
    stopped = _last_answer(page)
    assert "stopped" in stopped.locator(".stats").inner_text()

    # Markdown renders, and nothing in an answer can run as HTML.
    assert page.evaluate("""() => {
        const html = DOMPurify.sanitize(marked.parse('**bold**\\n\\n```python\\nprint(1)\\n```\\n<img src=x onerror=alert(1)>'));
        return html.includes('<strong>bold</strong>') && html.includes('<code') && !html.includes('onerror');
    }""")

    # The conversation survives a reload: it is kept in the browser.
    page.reload()
    page.wait_for_selector("#messages .message.assistant")
    assert page.locator("#messages .message.user").count() == 2
    assert page.locator("#conversations li").count() == 1


WEATHER = [{"type": "function", "function": {"name": "get_weather", "description": "The weather in a city.",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                           "required": ["city"]}}}]


def _tools(page, text: str, choice: str | None = None):
    """Paste tool definitions into the settings (the box checks them when it loses focus) and pick a tool choice."""
    _settings(page)
    page.fill("#tools", text)
    page.dispatch_event("#tools", "change")
    if choice:
        page.select_option("#tool-choice", choice)


def test_tool_calls_and_results_in_a_conversation(page, web):
    sent = []  # the requests the app makes, read as they go (nothing is changed or answered for the app)
    page.on("request", lambda r: sent.append(r.post_data_json) if r.url.endswith("/v1/chat/completions") else None)
    page.goto(web.url + "/?model=smollm2:135m")
    page.wait_for_selector("#model-select option[value='smollm2:135m']", state="attached")
    _settings(page, temperature=0, max_tokens=8)

    # Tools that are not a JSON list are refused inline and not sent.
    for bad in ("{not json", '{"type": "function"}'):
        _tools(page, bad)
        assert "JSON list" in page.locator("#tools-error:visible").inner_text()
    _ask(page, "Hi")
    _last_answer(page)
    assert "tools" not in sent[-1] and "tool_choice" not in sent[-1]

    # A forced call is shown collapsed, with its arguments.
    page.click("#new-chat")
    _tools(page, json.dumps(WEATHER), "required")
    assert page.locator("#tools-error").is_hidden()
    _settings(page, max_tokens=512)
    _ask(page, "What is the weather in Paris?")
    call = _last_answer(page).locator("details.tool-call")
    assert sent[-1]["tools"] == WEATHER and sent[-1]["tool_choice"] == "required"
    assert call.count() == 1 and call.get_attribute("open") is None
    summary = call.locator("summary").inner_text()
    assert summary.startswith("called get_weather(city=") and "Paris" in summary, summary
    assert '"city"' in call.locator("pre").text_content()  # the pretty-printed arguments, under the summary
    assert "get_weather" in page.locator("#tool-mode:visible").inner_text()  # the composer waits for the result
    page.screenshot(path=str(ARTIFACTS / "tool-call.png"), full_page=True)

    # The result goes back as a tool message; the model is asked again at once and answers in words.
    _ask(page, "18 degrees and sunny")
    result = page.locator("#messages details.tool-result")
    assert result.locator("summary").inner_text() == "get_weather returned: 18 degrees and sunny"
    assert result.get_attribute("open") is None
    page.wait_for_selector("#messages .message:last-child.assistant .stats", timeout=120_000)
    messages = sent[-1]["messages"]
    call_id = messages[1]["tool_calls"][0]["id"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool"]
    assert messages[2] == {"role": "tool", "tool_call_id": call_id, "content": "18 degrees and sunny"}
    assert sent[-1]["tool_choice"] == "auto"  # "required" would force another call: results are answered freely
    followup = page.locator("#messages .message.assistant").last
    assert followup.locator(".content").inner_text().strip() and followup.locator(".tool-call").count() == 0
    assert page.locator("#tool-mode").is_hidden()

    # Calls, results and the tool settings survive a reload, and the summaries are translated.
    page.reload()
    page.wait_for_selector("#messages details.tool-result")
    assert page.locator("#messages details.tool-call").count() == 1
    assert json.loads(page.input_value("#tools")) == WEATHER and page.input_value("#tool-choice") == "required"
    page.click("#lang-button")
    assert page.locator("#messages details.tool-call summary").inner_text().startswith("调用了 get_weather(city=")
    assert page.locator("#messages details.tool-result summary").inner_text() == "get_weather 返回：18 degrees and sunny"
    page.click("#messages details.tool-call summary")  # opened for the screenshot
    assert page.locator("#messages details.tool-call[open] pre").is_visible()


def test_a_knowledge_base_by_drag_and_drop_then_a_cited_answer(page, web):
    page.goto(web.url + "/#kb")
    page.fill("#kb-new-name", "webkb")
    page.click("#kb-create button")
    page.wait_for_selector("#kb-drop")
    # Drop a file on the drop zone, as a person dragging it from their desktop would.
    data = page.evaluate_handle("""(text) => {
        const dt = new DataTransfer();
        dt.items.add(new File([text], 'zorblax.md', {type: 'text/markdown'}));
        return dt;
    }""", FACT)
    page.dispatch_event("#kb-drop", "drop", {"dataTransfer": data})
    page.wait_for_selector("#kb-uploads li:has-text('zorblax.md: 1 chunks')")
    page.wait_for_selector("#kb-detail td button:has-text('zorblax.md')")
    # The file picker works too, and a file it cannot read is reported, not lost silently.
    page.set_input_files("#kb-files", files=[{"name": "blob.txt", "mimeType": "text/plain",
                                              "buffer": bytes(range(256)) * 4}])
    page.wait_for_selector("#kb-uploads li.error:has-text('blob.txt skipped')")
    # See the document's chunks and try a query.
    page.click("#kb-detail td button:has-text('zorblax.md')")
    page.wait_for_selector("#kb-chunks .chunk-text:has-text('glass bridges')")
    page.fill("#kb-q", "capital of Zorblax")
    page.click("#kb-query button")
    page.wait_for_selector("#kb-results li:has-text('zorblax.md')")

    # Chat with the knowledge base switched on: the answer lists its source.
    page.click("#tab-chat")
    page.wait_for_selector("#kb-select option[value='webkb']", state="attached")
    page.check("#kb-toggle")
    page.select_option("#kb-select", "webkb")
    _settings(page, temperature=0)
    _ask(page, "What is the capital city of Zorblax?")
    answer = _last_answer(page)
    sources = answer.locator(".sources")
    assert "zorblax.md" in sources.inner_text() and "Quenthar" in sources.inner_text()
    assert "Quenthar" in answer.locator(".content").inner_text()
    with httpx.Client(base_url=web.url) as c:
        assert c.get("/v1/kb/webkb").json()["documents"] == 1
        c.delete("/v1/kb/webkb")


def test_models_list_details_pull_and_delete(page, web):
    with httpx.Client(base_url=web.url, timeout=60) as c:
        assert c.post("/api/copy", json={"source": "tiny:latest", "destination": "web-copy:latest"}).status_code == 200
    page.goto(web.url + "/#models")
    table = page.locator("#models-table")
    page.wait_for_selector("#models-table td button:has-text('smollm2:135m')")
    assert "adapter of tiny:latest" in table.inner_text()  # the LoRA adapters name their base
    page.click("#models-table td button:has-text('smollm2:135m')")
    page.wait_for_selector("#model-detail .memory")
    memory = page.locator("#model-detail .memory").inner_text()
    assert "FP32" in memory and "Q4" in memory and "MB" in memory
    # Pull (the embedded embedder, no network needed) with its progress bar.
    page.fill("#pull-name", "all-minilm:l6-v2")
    page.click("#pull-form button")
    page.wait_for_selector("#pull-status:has-text('all-minilm:l6-v2 is ready')", timeout=120_000)
    # Delete asks first (accepted by the fixture), then the row goes.
    page.click("#models-table tr:has-text('web-copy:latest') button.danger")
    page.wait_for_selector("#models-table td button:has-text('web-copy:latest')", state="detached")
    names = [m["name"] for m in httpx.get(web.url + "/api/tags").json()["models"]]
    assert "web-copy:latest" not in names and "smollm2:135m" in names


def test_a_lora_fine_tune_from_an_uploaded_dataset(page, web, tmp_path):
    rows = [{"question": f"What colour is the sky on planet {i}?", "answer": f"On planet {i} the sky is green."}
            for i in range(40)]
    data = tmp_path / "web-planets.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    page.goto(web.url + "/#train")
    page.wait_for_selector("#train-base option[value='smollm2:135m']", state="attached")
    assert page.input_value("#train-base") == "smollm2:135m"  # the embedded model is the default base
    page.select_option("#train-base", "tiny:latest")  # the tiny model keeps the test fast
    page.set_input_files("#train-file", str(data))
    page.fill("#train-out", "web-tuned")
    page.fill("#train-steps", "4")
    page.click("#train-form button.primary")
    page.wait_for_selector("#run-detail h2:has-text('web-tuned:latest')")
    page.wait_for_selector("#run-detail .badge.finished", timeout=240_000)
    assert page.locator("#run-detail svg.chart polyline.train").count() == 1
    assert not page.evaluate("[...document.getElementById('run-detail').childNodes].some(n => n.nodeType === 3)")
    assert "base against tuned" in page.locator("#run-detail .report").inner_text()
    assert "web-tuned:latest" in page.locator("#run-list").inner_text()
    assert "web-planets.jsonl" in page.locator("#train-existing").inner_text()  # kept for the next run
    page.screenshot(path=str(ARTIFACTS / "training-run.png"), full_page=True)
    # The new model can be chatted with at once.
    page.click("#run-detail a:has-text('Chat with web-tuned:latest')")
    page.wait_for_selector("#model-select option[value='web-tuned:latest']", state="attached")
    assert page.input_value("#model-select") == "web-tuned:latest"
    # A broken dataset is refused with the server's reason.
    bad = tmp_path / "broken.jsonl"
    bad.write_text('{"question": "a", "answer": "b"}\n{not json\n')
    page.click("#tab-train")
    page.set_input_files("#train-file", str(bad))
    page.click("#train-form button.primary")
    page.wait_for_selector("#train-message.error:has-text('invalid JSON')")


def test_the_loss_curve_grows_live_and_cancel_stops_the_run(page, web, tmp_path):
    rows = [{"question": f"Which moon circles planet {i}?", "answer": f"Planet {i} has the moon Ilo."} for i in range(40)]
    data = tmp_path / "web-moons.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    page.goto(web.url + "/#train")
    page.wait_for_selector("#train-base option[value='tiny:latest']", state="attached")
    page.select_option("#train-base", "tiny:latest")
    page.set_input_files("#train-file", str(data))
    page.fill("#train-out", "web-long")
    page.fill("#train-steps", "100000")
    page.click("#train-form button.primary")
    points = "(document.querySelector('#run-detail polyline.train')?.getAttribute('points') || '').split(' ').filter(Boolean).length"
    page.wait_for_function(f"{points} >= 2", timeout=120_000)
    seen = page.evaluate(points)
    page.wait_for_function(f"{points} > {seen}", timeout=60_000)  # redrawn while it trains, without a reload
    page.click("#run-detail button:has-text('Cancel')")
    page.wait_for_selector("#run-detail .badge.cancelled", timeout=60_000)
    assert httpx.get(web.url + "/v1/runs/web-long-latest").json()["status"] == "cancelled"


def test_language_switch_and_chinese_by_default(page, web, browser):
    page.goto(web.url + "/")
    assert page.inner_text("#tab-chat") == "Chat"
    page.click("#lang-button")
    assert page.inner_text("#tab-chat") == "对话" and page.get_attribute("html", "lang") == "zh-CN"
    assert page.get_attribute("#prompt", "placeholder").startswith("输入问题")
    page.reload()
    assert page.inner_text("#tab-models") == "模型"  # the choice is remembered
    page.click("#lang-button")
    assert page.inner_text("#tab-models") == "Models"

    zh = browser.new_context(locale="zh-CN", **TEST_CSP)
    try:
        p = zh.new_page()
        p.goto(web.url + "/")
        assert p.inner_text("#tab-kb") == "知识库" and p.inner_text("#send") == "发送"
        p.screenshot(path=str(ARTIFACTS / "chinese.png"))
    finally:
        zh.close()


def test_keyboard_focus_is_visible(page, web):
    page.goto(web.url + "/")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    style = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert style == "solid"
    labels = page.evaluate("[...document.querySelectorAll('input, select, textarea')]"
                           ".filter(e => !e.labels || !e.labels.length).map(e => e.id || e.outerHTML)")
    assert labels == [], f"inputs without a label: {labels}"


def test_phone_width(browser, web):
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="en-US", is_mobile=True, **TEST_CSP)
    try:
        p = context.new_page()
        p.goto(web.url + "/")
        p.wait_for_selector("#model-select option", state="attached")
        assert p.evaluate("document.documentElement.scrollWidth") <= 390
        off_screen = "document.getElementById('new-chat').getBoundingClientRect().right <= 0"
        assert p.is_visible("#sidebar-toggle") and p.evaluate(off_screen)  # the conversation list is a menu
        p.click("#sidebar-toggle")
        p.wait_for_function("document.getElementById('new-chat').getBoundingClientRect().left >= 0")
        p.screenshot(path=str(ARTIFACTS / "phone-menu.png"))
        p.mouse.click(370, 400)  # a tap beside the menu closes it
        p.wait_for_function(off_screen)
        p.click("#sidebar-toggle")
        p.click("#new-chat")
        p.goto(web.url + "/#models")
        p.wait_for_selector("#models-table td button:has-text('smollm2:135m')")
        assert p.evaluate("document.documentElement.scrollWidth") <= 390
        p.screenshot(path=str(ARTIFACTS / "phone-models.png"), full_page=True)
    finally:
        context.close()


def test_the_app_asks_for_the_api_key(page, server):
    page.goto(server.url + "/")  # this server needs KEY
    page.wait_for_selector("#auth-dialog[open]")
    page.fill("#auth-key", "wrong")
    page.click("#auth-form button")
    page.wait_for_selector("#auth-dialog[open] #auth-error:visible")
    page.fill("#auth-key", KEY)
    page.click("#auth-form button")
    page.wait_for_selector("#model-select option[value='smollm2:135m']", state="attached")
    page.click("#tab-models")
    page.wait_for_selector("#models-table td button:has-text('tiny:latest')")
    assert page.is_visible("#key-button")
    # The key is kept for the session: a reload does not ask again.
    page.reload()
    page.wait_for_selector("#models-table td button:has-text('tiny:latest')")
    assert not page.is_visible("#auth-dialog")


def test_the_web_app_shows_a_report(browser, serve_home, report_name):
    web = ServerProcess(serve_home).wait()
    try:
        context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900}, **TEST_CSP)
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
