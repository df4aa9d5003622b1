"""Training through the server (a xuetu extension): upload a dataset, start a LoRA fine-tune as a
background process, follow it to its report, cancel one."""

from __future__ import annotations

import json
import os
import time

import pytest

ROWS = [{"question": f"What colour is the sky on planet {i}?", "answer": f"On planet {i} the sky is green."}
        for i in range(40)]
GOOD = "".join(json.dumps(r) + "\n" for r in ROWS).encode()


def _wait(client, run: str, until, timeout: float = 240) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        info = client.get(f"/v1/runs/{run}").json()
        if until(info):
            return info
        time.sleep(0.5)
    raise AssertionError(f"run {run} did not get there: {info}")


def test_a_dataset_upload_is_read_and_checked(server):
    with server.client() as c:
        bad = c.put("/v1/datasets/broken.jsonl", content=b'{"question": "a", "answer": "b"}\n{not json\n')
        assert bad.status_code == 400 and bad.json()["error"]["message"].startswith("broken.jsonl:2: invalid JSON")
        raw = c.put("/v1/datasets/raw.jsonl", content=b'{"text": "just prose"}\n')
        assert raw.status_code == 400 and "questions and answers" in raw.json()["error"]["message"]
        assert c.put("/v1/datasets/run.exe", content=GOOD).status_code == 400
        assert c.put("/v1/datasets/empty.jsonl", content=b"").status_code == 400
        ok = c.put("/v1/datasets/planets.jsonl", content=GOOD)
        assert ok.status_code == 201 and ok.json()["records"] == 40 and ok.json()["object"] == "dataset"
        names = [d["name"] for d in c.get("/v1/datasets").json()["data"]]
        assert "planets.jsonl" in names and "broken.jsonl" not in names and "raw.jsonl" not in names
        assert not list((server.home / "datasets" / ".incoming").iterdir())  # no half-uploaded leftovers
        assert c.put("/v1/datasets/planets.jsonl").status_code == 400
    assert c.headers  # the routes need the key like every other one
    import httpx

    assert httpx.get(server.url + "/v1/datasets").status_code == 401


def test_start_follow_and_report_a_fine_tune(server):
    with server.client() as c:
        c.put("/v1/datasets/planets.jsonl", content=GOOD)
        assert c.post("/v1/runs", json={"data": "nope.jsonl", "model": "tiny:latest"}).status_code == 404
        assert c.post("/v1/runs", json={"data": "planets.jsonl", "model": "no-such-model"}).status_code in (400, 404)
        assert c.post("/v1/runs", json={"data": "planets.jsonl", "max_steps": 0}).status_code == 400
        started = c.post("/v1/runs", json={"data": "planets.jsonl", "model": "tiny:latest", "out": "tiny-web",
                                           "max_steps": 6, "lr": 0.001})
        assert started.status_code == 202, started.text
        run = started.json()["run"]
        assert started.json()["status"] == "starting" and run == "tiny-web-latest"
        busy = c.post("/v1/runs", json={"data": "planets.jsonl", "model": "tiny:latest", "out": "tiny-other"})
        assert busy.status_code == 409 and "already running" in busy.json()["error"]["message"]
        listed = {r["run"]: r for r in c.get("/v1/runs").json()["data"]}
        assert listed[run]["status"] in ("starting", "running")

        info = _wait(c, run, lambda i: i["status"] not in ("starting", "running", "evaluating"))
        assert info["status"] == "finished", info["log"]
        assert [m["step"] for m in info["metrics"]] == list(range(1, 7))
        assert info["metrics"][-1]["loss"] < info["metrics"][0]["loss"]
        assert "base against tuned" in info["report"] and info["base"] == "tiny:latest"
        png = c.get(f"/v1/runs/{run}/curves.png")
        assert png.status_code == 200 and png.content[:4] == b"\x89PNG"
        assert "tiny-web:latest" in [m["name"] for m in c.get("/api/tags").json()["models"]]
        assert c.post(f"/v1/runs/{run}/cancel").status_code == 409  # it is not running any more
        assert c.get("/v1/runs/no-such-run").status_code == 404
        again = c.post("/v1/runs", json={"data": "planets.jsonl", "model": "tiny:latest", "out": "tiny-web"})
        assert again.status_code == 409 and "already exists" in again.json()["error"]["message"]


def test_cancel_stops_the_training_process(server):
    with server.client() as c:
        c.put("/v1/datasets/planets.jsonl", content=GOOD)
        run = c.post("/v1/runs", json={"data": "planets.jsonl", "model": "tiny:latest", "out": "tiny-long",
                                       "max_steps": 100000}).json()["run"]
        info = _wait(c, run, lambda i: i["status"] == "running" and i["metrics"], timeout=120)
        pid = json.loads((server.home / "runs" / run / "run.json").read_text())["pid"]
        cancelled = c.post(f"/v1/runs/{run}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the training process is still alive after cancel")
        assert c.get(f"/v1/runs/{run}").json()["status"] == "cancelled"
        # the machine is free for the next one
        assert c.post("/v1/runs", json={"data": "planets.jsonl", "model": "tiny:latest", "out": "tiny-next",
                                        "max_steps": 1}).status_code == 202
        _wait(c, "tiny-next-latest", lambda i: i["status"] not in ("starting", "running", "evaluating"))


def test_show_reports_memory_per_precision(server):
    with server.client() as c:
        body = c.post("/api/show", json={"model": "smollm2:135m"}).json()
    assert body["memory"]["FP32"] > body["memory"]["FP16/BF16"] > body["memory"]["INT8"] > 0 and body["size"] > 0
