"""schemathesis fuzzes every operation that /openapi.json describes, against a live `xuetu serve` over real HTTP.

The server runs on a throw-away XUETU_HOME (the `serve` fixture), so the fuzzer may delete models, create
knowledge bases and start runs. It caps generation at 8 tokens, so a generated chat costs little, and the test
environment points HF_ENDPOINT at a closed port, so a generated pull fails fast instead of downloading.
No operation may answer with a server error (5xx other than the upstream 502/503 of a hub it cannot reach).
"""

from __future__ import annotations

from collections import Counter

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from schemathesis.checks import not_a_server_error

EXAMPLES = 12  # generated cases per operation; about 40 operations
SEED = 22  # issue 22; a fixed seed makes a failure reproducible


def _fuzz(operation, sent: list) -> str | None:
    """Generate EXAMPLES cases for one operation and send each; the first server error, described, or None.

    Hypothesis drives schemathesis's strategy here directly: schemathesis's own pytest integration reads a
    private attribute that pytest 9.2 removed (`Function._nodeid`)."""
    found: list[str] = []

    @seed(SEED)
    @settings(max_examples=EXAMPLES, database=None, deadline=None, phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def run(case):
        if found:
            return
        response = case.call(timeout=60)
        sent.append(response.status_code)
        if response.status_code in (502, 503) and case.path == "/api/pull":
            return  # the hub is unreachable on purpose: an upstream error, not ours
        try:
            case.validate_response(response, checks=[not_a_server_error])
        except Exception as e:  # schemathesis's failure group: keep the case to replay it
            found.append(f"{operation.label}: {response.status_code} for {case.as_curl_command()}\n{e}")

    run()
    return found[0] if found else None


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_no_operation_answers_a_server_error(serve):
    server = serve("--max-tokens", "8")
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30, [op.label for op in operations]
    sent: list[int] = []
    failures = [f for f in (_fuzz(op, sent) for op in operations) if f]
    assert not failures, "\n\n".join(failures)
    print(f"{len(sent)} requests to {len(operations)} operations; answers: {sorted(Counter(sent).items())}")
    assert len(sent) >= 4 * len(operations)  # the fuzzer did reach the server
    assert httpx.get(server.url + "/health", timeout=10).status_code == 200  # and it still stands


# Every route that reads a body declares it: JSON for the API's requests, raw bytes for the two uploads.
BODIES = {
    ("post", "/v1/chat/completions"), ("post", "/v1/completions"), ("post", "/v1/embeddings"),
    ("post", "/api/generate"), ("post", "/api/chat"), ("post", "/api/show"), ("post", "/api/pull"),
    ("post", "/api/create"), ("post", "/api/copy"), ("delete", "/api/delete"), ("post", "/api/embed"),
    ("post", "/api/embeddings"), ("post", "/v1/kb"), ("post", "/v1/kb/{name}/query"), ("post", "/v1/runs"),
}
UPLOADS = {("put", "/v1/kb/{name}/documents/{filename}"), ("put", "/v1/datasets/{filename}")}


def test_every_body_is_declared_in_openapi():
    from xuetu.serve.app import create_app

    paths = create_app().openapi()["paths"]
    declared = {(m, path): op["requestBody"]["content"] for path, ops in paths.items() for m, op in ops.items()
                if "requestBody" in op}
    assert set(declared) == BODIES | UPLOADS
    assert all(list(declared[op]) == ["application/json"] for op in BODIES)
    assert all(list(declared[op]) == ["application/octet-stream"] for op in UPLOADS)


# Regression tests for what the fuzzer found, one each, over HTTP.

def test_pull_of_an_invalid_name_is_a_bad_request(serve):
    server = serve()
    with server.client() as c:
        for name in ("a:b:c", "x/y/z:1", "bad name!"):
            r = c.post("/api/pull", json={"model": name, "stream": False})
            assert r.status_code == 400, (name, r.text)
            assert "invalid model name" in r.json()["error"]
