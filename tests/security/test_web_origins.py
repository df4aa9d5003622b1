"""DNS rebinding and cross-site requests against a live `xuetu serve`: a foreign Host or Origin gets 403 with a
message naming the setting to change, and the request changes nothing; loopback use, the web app's own
requests and what the operator allows still work."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys

import httpx
import pytest

from helpers.server import free_port
from security.conftest import KEY, snapshot


def _delete(server, **headers):
    return httpx.request("DELETE", server.url + "/api/delete", json={"model": "tiny:latest"}, headers=headers, timeout=30)


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.1.evil.example", "localhost.evil.example"])
def test_dns_rebinding_is_refused_on_every_route(keyless, host):
    before = snapshot(keyless.home)
    r = _delete(keyless, Host=host)
    name = host.split(":")[0]
    assert r.status_code == 403
    assert f"host '{name}' is not allowed" in r.json()["error"] and f"--allowed-host {name}" in r.json()["error"]
    chat = httpx.post(keyless.url + "/v1/chat/completions", headers={"Host": host}, timeout=30,
                      json={"model": "tiny:latest", "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]})
    assert chat.status_code == 403 and chat.json()["error"]["code"] == "host_not_allowed"
    assert "XUETU_HOSTS" in chat.json()["error"]["message"]
    for path in ("/", "/app/main.js", "/api/tags", "/health", "/metrics"):
        assert httpx.get(keyless.url + path, headers={"Host": host}).status_code == 403, path
    assert snapshot(keyless.home) == before
    assert "tiny:latest" in [m["name"] for m in httpx.get(keyless.url + "/api/tags").json()["models"]]


@pytest.mark.parametrize("origin", ["https://evil.example", "http://127.0.0.1.evil.example", "null"])
def test_cross_site_requests_are_refused(keyless, origin):
    before = snapshot(keyless.home)
    r = _delete(keyless, Origin=origin)
    assert r.status_code == 403
    assert f"origin '{origin}' is not allowed" in r.json()["error"] and f"--origin {origin}" in r.json()["error"]
    # the form a page can send without a preflight, and the preflight itself
    form = httpx.post(keyless.url + "/api/pull", content='{"model": "all-minilm"}', timeout=30,
                      headers={"Origin": origin, "Content-Type": "text/plain"})
    assert form.status_code == 403
    pre = httpx.options(keyless.url + "/v1/chat/completions",
                        headers={"Origin": origin, "Access-Control-Request-Method": "POST"})
    assert pre.status_code == 403 and "access-control-allow-origin" not in pre.headers
    assert snapshot(keyless.home) == before


def test_loopback_and_same_origin_use_still_works(keyless):
    port = keyless.port
    for host in (None, f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "app.localhost", "192.168.1.20"):
        headers = {"Host": host} if host else {}
        assert httpx.get(keyless.url + "/api/tags", headers=headers).status_code == 200, host
    for origin in (f"http://127.0.0.1:{port}", f"http://localhost:{port}", "http://localhost:3000",
                   "http://[::1]:5173", "tauri://localhost", "app://obsidian.md"):
        r = httpx.post(keyless.url + "/api/show", json={"model": "tiny:latest"}, headers={"Origin": origin})
        assert r.status_code == 200, origin
    # the web app's own request: same origin through the name the user typed
    r = httpx.post(keyless.url + "/api/show", json={"model": "tiny:latest"},
                   headers={"Host": f"localhost:{port}", "Origin": f"http://localhost:{port}"})
    assert r.status_code == 200


def test_hosts_and_origins_the_operator_allows(serve):
    s = serve("--allowed-host", "xuetu.lan", "--origin", "https://app.example", "--cors", "https://old.example",
              env={"XUETU_HOSTS": ".corp.example", "XUETU_ORIGINS": "https://other.example,"})
    for host in ("xuetu.lan", "xuetu.lan:8000", "gpu.corp.example", "corp.example"):
        assert httpx.get(s.url + "/api/tags", headers={"Host": host}).status_code == 200, host
    assert httpx.get(s.url + "/api/tags", headers={"Host": "evil.example"}).status_code == 403
    for origin in ("https://app.example", "https://old.example", "https://other.example"):
        r = httpx.get(s.url + "/api/tags", headers={"Origin": origin})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == origin
    assert httpx.get(s.url + "/api/tags", headers={"Origin": "https://evil.example"}).status_code == 403


def test_a_keyed_server_on_loopback_checks_too(serve):
    s = serve(key=KEY)
    auth = {"Authorization": f"Bearer {KEY}"}
    assert httpx.get(s.url + "/api/tags", headers={**auth, "Host": "evil.example"}).status_code == 403
    assert httpx.get(s.url + "/api/tags", headers={**auth, "Origin": "https://evil.example"}).status_code == 403
    assert httpx.get(s.url + "/api/tags", headers=auth).status_code == 200
    # an empty bearer token never authenticates (sent with http.client: httpx refuses a value ending in a space)
    for value in ("Bearer ", "Bearer   ", "Bearer"):
        conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
        conn.request("GET", "/api/tags", headers={"Authorization": value})
        assert conn.getresponse().status == 401, repr(value)
        conn.close()


def test_a_keyed_server_on_the_network_leaves_host_to_its_proxy():
    from xuetu.serve.app import create_app
    from xuetu.serve.args import ServeArgs
    from xuetu.serve.origins import HostOriginCheck

    def check(**kw):
        app = create_app(ServeArgs(guard=False, **kw))
        return next(m.kwargs for m in app.user_middleware if m.cls is HostOriginCheck)

    assert check(host="0.0.0.0", api_keys=["k"])["check_host"] is False
    assert check(host="0.0.0.0")["check_host"] is True
    assert check(host="127.0.0.1", api_keys=["k"])["check_host"] is True
    assert check(host="myhost.lan")["hosts"] == ["myhost.lan"]  # the name it binds is its own


@pytest.mark.parametrize("keys", [["--api-key", ""], ["--api-key", "  "], ["--api-key", "good", "--api-key", ""],
                                  ["--api-key", " padded "]])
def test_an_empty_api_key_is_refused_at_start(keys, sec_home):
    port = free_port()
    run = subprocess.run([sys.executable, "-m", "xuetu", "serve", "--port", str(port), *keys], capture_output=True,
                         text=True, timeout=60, env={**os.environ, "XUETU_HOME": str(sec_home)})
    assert run.returncode == 1
    assert "API key cannot" in run.stderr
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
