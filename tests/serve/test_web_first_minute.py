"""The web app's first minute, in a real browser typing as fast as a script can (issue 29): a message typed right
after the page opens, while the model list is still on its way, while the model loads, or while the server is down
is answered, or shows what went wrong with a Retry; nothing typed is lost. In English and Chinese. Real
`xuetu serve` processes on a fresh store holding the embedded model; nothing of the server or the model is faked."""

from __future__ import annotations

import json
import os
import shutil
import threading

import httpx
import pytest

from helpers.browser import BROWSER_ARTIFACTS
from helpers.server import ServerProcess

TEST_CSP = {"bypass_csp": True}  # wait_for_function uses eval(), which the page's policy forbids (see test_web.py)
LOCALES = {"en": "en-US", "zh": "zh-CN"}
SAID = {  # what the page says, per language
    "en": {"loading": "loading models…", "waiting": "Waiting for the model list", "down": "the server does not answer",
           "cut": "The answer was cut off", "retry": "Retry", "noKb": "no knowledge base yet — create one",
           "noModel": "No chat model yet", "send": "Send", "refused": "The server refused the message"},
    "zh": {"loading": "正在加载模型……", "waiting": "正在等待模型列表", "down": "服务器没有响应",
           "cut": "回答中断了", "retry": "重试", "noKb": "还没有知识库——新建一个",
           "noModel": "还没有对话模型", "send": "发送", "refused": "服务器拒绝了这条消息"},
}
QUESTION = {"en": "What is the capital of France?", "zh": "法国的首都是哪里？"}
FAST = "localStorage.setItem('xuetu.settings', JSON.stringify({max_tokens: 16, temperature: 0}))"


@pytest.fixture(scope="module")
def fresh_home(tmp_path_factory, embedded_home):
    """A fresh store: the embedded model (hard links) and nothing else, no knowledge base, no caches."""
    home = tmp_path_factory.mktemp("first-minute")
    shutil.copytree(embedded_home / "models" / "smollm2", home / "models" / "smollm2", copy_function=os.link)
    return home


@pytest.fixture
def open_page(browser, request):
    """open_page(lang) -> a page in a new browser context with that locale; JavaScript errors fail the test."""
    contexts, errors = [], []

    def make(lang: str, init: str = FAST):
        context = browser.new_context(locale=LOCALES[lang], viewport={"width": 1280, "height": 860}, **TEST_CSP)
        context.add_init_script(init)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.set_default_timeout(60_000)
        return page

    yield make
    for i, context in enumerate(contexts):
        for page in context.pages:
            page.screenshot(path=str(BROWSER_ARTIFACTS / f"{request.node.name}-{i}.png"), full_page=True)
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def _chats(page) -> list:
    """The chat requests the page sends, as they go (read only: nothing is changed or answered for the app)."""
    sent = []
    page.on("request", lambda r: sent.append(r.post_data_json) if r.url.endswith("/v1/chat/completions") else None)
    return sent


def _type_and_enter(page, text: str) -> dict:
    """Type and press Enter in one script step, and report what the page showed at that instant."""
    return page.evaluate("""(text) => {
        const prompt = document.getElementById('prompt');
        prompt.value = text;
        prompt.dispatchEvent(new Event('input', {bubbles: true}));
        prompt.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', bubbles: true, cancelable: true}));
        const models = document.getElementById('model-select');
        return {listing: models.getAttribute('aria-busy') === 'true', options: models.options.length};
    }""", text)


def _max_tokens(page, n: int):
    if not page.evaluate("document.getElementById('settings').open"):
        page.click("#settings summary")
    page.fill("#max-tokens", str(n))
    page.dispatch_event("#max-tokens", "input")


def _answered(page, timeout=180_000):
    page.wait_for_selector("#messages .message.assistant:last-child .stats", timeout=timeout)
    answer = page.locator("#messages .message.assistant").last
    assert answer.locator(".content").inner_text().strip()
    return answer


def _kept(page, text: str):
    """The text is in the conversation on screen and in the browser's storage, once."""
    assert page.locator("#messages .message.user .content").all_inner_texts().count(text) == 1
    stored = json.loads(page.evaluate("localStorage.getItem('xuetu.conversations')"))
    assert [m["content"] for c in stored for m in c["messages"] if m["role"] == "user"].count(text) == 1


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_typed_right_after_the_page_opens(open_page, fresh_home, lang):
    """A fresh server, a fresh store: the page opens and the question goes at once, the model not loaded yet."""
    server = ServerProcess(fresh_home).wait()
    try:
        assert httpx.get(server.url + "/api/ps").json()["models"] == []  # its first request must load the model
        page = open_page(lang)
        sent = _chats(page)
        page.goto(server.url + "/", wait_until="domcontentloaded")
        _type_and_enter(page, QUESTION[lang])
        _answered(page)
        _kept(page, QUESTION[lang])
        assert len(sent) == 1 and sent[0]["messages"][-1]["content"] == QUESTION[lang]
        assert sent[0]["model"] == "smollm2:135m"
        assert page.input_value("#prompt") == ""
    finally:
        server.stop()


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_typed_while_the_model_list_is_on_its_way(open_page, fresh_home, lang):
    """The list request is held on its way (the server answers it, later): the picker says it is loading, the
    message waits, visibly, and goes when the list comes; the model itself is loading on the server meanwhile."""
    server = ServerProcess(fresh_home).wait()
    try:
        # Another client loads the model (Ollama's load: generate with no prompt) while the page types.
        loading = threading.Thread(target=lambda: httpx.post(server.url + "/api/generate",
                                                              json={"model": "smollm2:135m"}, timeout=120))
        page = open_page(lang)
        sent = _chats(page)
        held = []
        page.route("**/api/tags", lambda route: held.append(route))
        loading.start()
        page.goto(server.url + "/", wait_until="domcontentloaded")
        page.wait_for_function("() => document.querySelector('#model-select').getAttribute('aria-busy') === 'true'")
        assert page.locator("#model-select option").inner_text() == SAID[lang]["loading"]
        assert _type_and_enter(page, QUESTION[lang])["listing"] is True
        page.wait_for_selector("#messages .message.user .waiting")
        assert SAID[lang]["waiting"] in page.locator("#messages .message.user .waiting").inner_text()
        _kept(page, QUESTION[lang])
        _type_and_enter(page, "typed while the first one waits")  # refused for now: stays in the composer
        assert page.input_value("#prompt") == "typed while the first one waits"
        assert sent == [] and held
        for route in held:  # on to the server, which answers it
            route.continue_()
        page.unroute("**/api/tags")
        _answered(page)
        loading.join()
        assert len(sent) == 1 and sent[0]["messages"][-1]["content"] == QUESTION[lang]
        assert page.locator("#messages .waiting").count() == 0
        assert page.input_value("#model-select") == "smollm2:135m"
        page.reload()  # the unsent text survives a reload too
        assert page.input_value("#prompt") == "typed while the first one waits"
    finally:
        server.stop()


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_server_down_then_back_up(open_page, fresh_home, lang):
    """Sent while the server is down: the error and a Retry on the message; the server comes back on the same
    port and Retry answers it. Then the server dies mid-answer: the cut is shown, and Retry asks again."""
    server = ServerProcess(fresh_home).wait()
    port = server.port
    try:
        page = open_page(lang)
        sent = _chats(page)
        page.goto(server.url + "/")
        page.wait_for_selector("#model-select option[value='smollm2:135m']", state="attached")
        server.stop()
        _type_and_enter(page, QUESTION[lang])
        failure = page.locator("#messages .message.user .failed[role=alert]")
        failure.wait_for()
        assert SAID[lang]["down"] in failure.inner_text() and "xuetu serve" in failure.inner_text()
        assert failure.locator("button.retry").inner_text() == SAID[lang]["retry"]
        _kept(page, QUESTION[lang])
        assert page.locator("#messages .message.assistant").count() == 0

        server = ServerProcess(fresh_home, port=port).wait()
        failure.locator("button.retry").click()
        _answered(page)
        _kept(page, QUESTION[lang])
        assert page.locator("#messages .failed").count() == 0
        assert sent[-1]["messages"][-1]["content"] == QUESTION[lang]

        # A dropped stream: the server is killed while it writes a long answer.
        _max_tokens(page, 2000)
        story = "Write a very long story about a dragon, in many chapters."
        _type_and_enter(page, story)
        page.wait_for_function("document.querySelector('#messages .message.streaming .content')?.innerText.length > 40")
        server.kill()
        cut = page.locator("#messages .message.assistant:last-child .failed[role=alert]")
        cut.wait_for()
        assert SAID[lang]["cut"] in cut.inner_text()
        _kept(page, story)
        server = ServerProcess(fresh_home, port=port).wait()
        _max_tokens(page, 16)
        cut.locator("button.retry").click()
        page.wait_for_function("!document.querySelector('#messages .failed')")
        _answered(page)
        _kept(page, story)
        assert page.locator("#messages .message.assistant").count() == 2
    finally:
        server.stop()


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_message_the_server_refuses_is_kept_with_the_reason(open_page, fresh_home, lang):
    """A real 400: a message longer than the model's context. The server's reason is shown on the message, with
    a Retry, and the long text stays in the conversation and the browser's storage."""
    server = ServerProcess(fresh_home).wait()
    try:
        page = open_page(lang)
        sent = _chats(page)
        page.goto(server.url + "/")
        page.wait_for_selector("#model-select option[value='smollm2:135m']", state="attached")
        huge = " ".join(f"word{i}" for i in range(9000))
        _type_and_enter(page, huge)
        failure = page.locator("#messages .message.user .failed[role=alert]")
        failure.wait_for(timeout=120_000)
        text = failure.inner_text()
        assert SAID[lang]["refused"] in text and "tokens but smollm2:135m holds" in text  # the server's own reason
        assert failure.locator("button.retry").inner_text() == SAID[lang]["retry"]
        assert len(sent) == 1 and page.locator("#messages .message.assistant").count() == 0
        _kept(page, huge)
    finally:
        server.stop()


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_no_chat_model_and_no_knowledge_base_are_said(open_page, tmp_path, lang):
    """An empty store: the pickers say what they (do not) hold; a message says why it was not answered."""
    server = ServerProcess(tmp_path).wait()
    try:
        page = open_page(lang)
        page.goto(server.url + "/")
        _type_and_enter(page, QUESTION[lang])
        failure = page.locator("#messages .message.user .failed[role=alert]")
        failure.wait_for()
        assert SAID[lang]["noModel"] in failure.inner_text() and failure.locator("button.retry").is_visible()
        assert SAID[lang]["noModel"] in page.locator("#model-select option").inner_text()
        page.wait_for_selector("#kb-empty:visible")
        assert page.locator("#kb-select option").inner_text() == SAID[lang]["noKb"]
        page.click("#kb-empty")
        page.wait_for_selector("#view-kb:visible")
        _kept(page, QUESTION[lang])
    finally:
        server.stop()


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_select_and_button_has_a_name_a_screen_reader_reads(open_page, fresh_home, lang):
    server = ServerProcess(fresh_home).wait()
    try:
        page = open_page(lang)
        page.goto(server.url + "/")
        page.wait_for_selector("#model-select option[value='smollm2:135m']", state="attached")
        _type_and_enter(page, QUESTION[lang])
        _answered(page)
        assert page.locator("#kb-select option").inner_text() == SAID[lang]["noKb"]
        assert page.locator("#send").inner_text() == SAID[lang]["send"]
        for view in ("chat", "kb", "models", "train", "evals"):
            page.click(f"#tab-{view}")
            page.wait_for_selector(f"#view-{view}:visible")
            page.wait_for_load_state("networkidle")
            if view == "chat":
                page.click("#settings summary")
            # The accessibility tree Chromium gives a screen reader: each button and select (combobox) named.
            tree = page.locator("body").aria_snapshot()
            controls = [line.strip() for line in tree.splitlines() if line.strip().startswith(("- button", "- combobox"))]
            assert controls, tree
            nameless = [c for c in controls if c.rstrip(":") in ("- button", "- combobox") or '""' in c]
            assert nameless == [], f"{view}: controls without a name: {nameless}\n{tree}"
    finally:
        server.stop()
