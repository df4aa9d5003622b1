"""POST /v1/kb over real HTTP: a knowledge base's store, location, embedder and reranker come from the operator's
allow-list. Nothing is written outside XUETU_HOME, no request leaves for a client's URL, nothing is pulled."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from security.conftest import snapshot


@pytest.fixture
def listener():
    """A local HTTP server that records every request it gets (the SSRF target)."""
    seen: list[str] = []

    class Record(BaseHTTPRequestHandler):
        def _any(self):
            seen.append(f"{self.command} {self.path}")
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"result": {"collections": []}, "status": "ok"}')

        do_GET = do_PUT = do_POST = do_DELETE = _any

        def log_message(self, *args):
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Record)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    httpd.shutdown()


def _create(server, body: dict):
    with server.client() as c:
        return c.post("/v1/kb", json=body)


def test_location_outside_home_is_refused(keyless, tmp_path):
    target = tmp_path / "attacker" / "db"
    before = snapshot(keyless.home)
    r = _create(keyless, {"name": "evil", "location": str(target)})
    assert r.status_code == 403, r.text
    message = r.json()["error"]["message"]
    assert "not one this server allows" in message and "--kb-location" in message
    assert not target.exists() and not target.parent.exists()
    assert snapshot(keyless.home) == before


def test_qdrant_url_from_a_client_is_refused(keyless, listener):
    url, seen = listener
    before = snapshot(keyless.home)
    r = _create(keyless, {"name": "ssrf", "store": "qdrant", "location": url + "/collections"})
    assert r.status_code == 403, r.text
    assert "URL" in r.json()["error"]["message"] and "--qdrant-url" in r.json()["error"]["message"]
    assert seen == []
    assert snapshot(keyless.home) == before


@pytest.mark.parametrize("field,value", [("embedder", "attacker/evil-embedder"), ("embedder", "/etc"),
                                         ("embedder", "~/model"), ("reranker", "attacker/evil-reranker"),
                                         ("reranker", "/tmp")])
def test_embedder_and_reranker_must_be_stored(keyless, field, value):
    before = snapshot(keyless.home)
    r = _create(keyless, {"name": "pulls", field: value})
    assert r.status_code == 403, r.text
    message = r.json()["error"]["message"]
    assert field in message and "in the store" in message and "xuetu pull" in message
    assert snapshot(keyless.home) == before
    assert not (keyless.home / "kb" / "pulls").exists()


def test_defaults_and_a_stored_embedder_work(keyless):
    r = _create(keyless, {"name": "plain"})
    assert r.status_code == 201, r.text
    r = _create(keyless, {"name": "named", "embedder": "all-minilm:l6-v2"})
    assert r.status_code == 201 and r.json()["embedder"] == "all-minilm:l6-v2"


def test_a_location_the_operator_allows(serve, sec_home, tmp_path):
    allowed = tmp_path / "kb-disk"
    allowed.mkdir()
    server = serve("--kb-location", str(allowed))
    r = _create(server, {"name": "ondisk", "location": str(allowed / "ondisk")})
    assert r.status_code == 201, r.text
    with server.client() as c:
        put = c.put("/v1/kb/ondisk/documents/a.md", content=b"# Notes\n\nThe launch code is blue.\n")
        assert put.status_code in (200, 201), put.text
    assert any((allowed / "ondisk").iterdir())
    outside = _create(server, {"name": "other", "location": str(tmp_path / "elsewhere")})
    assert outside.status_code == 403 and str(allowed) in outside.json()["error"]["message"]
