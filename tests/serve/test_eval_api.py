"""Evaluation reports over HTTP (/v1/evals), against a live `xuetu serve` (the web app's tab: test_web.py)."""

from __future__ import annotations

import httpx

from serve.conftest import KEY, PLANTED


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
