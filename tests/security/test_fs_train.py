"""POST /v1/runs over real HTTP: a fine-tune never replaces a stored model, runs one at a time even when
requests race, and stays inside the server's step and wall-time caps."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from security.conftest import snapshot

DATA = b"".join(b'{"question": "What is %d+%d?", "answer": "%d"}\n' % (i, i, 2 * i) for i in range(24))


@pytest.fixture
def trainer(serve):
    def start(*args):
        server = serve(*args)
        with server.client() as c:
            assert c.put("/v1/datasets/sums.jsonl", content=DATA).status_code == 201
        return server

    return start


def _runs(server, body: dict):
    with server.client() as c:
        return c.post("/v1/runs", json={"data": "sums.jsonl", "model": "tiny:latest", **body})


def _wait(server, run: str, done, timeout: float = 120) -> dict:
    deadline = time.time() + timeout
    with server.client() as c:
        while time.time() < deadline:
            info = c.get(f"/v1/runs/{run}").json()
            if done(info):
                return info
            time.sleep(1)
    raise TimeoutError(info)


@pytest.mark.parametrize("out", ["tiny", "tiny:latest", "smollm2:135m"])
def test_out_never_names_a_stored_model(trainer, sec_home, out):
    server = trainer()
    before = snapshot(sec_home / "models")
    r = _runs(server, {"out": out, "max_steps": 2})
    assert r.status_code == 409, r.text
    assert "already exists" in r.json()["error"]["message"]
    assert snapshot(sec_home / "models") == before
    assert not (sec_home / "runs").exists() or not any((sec_home / "runs").iterdir())


def test_steps_above_the_cap_are_refused(trainer, sec_home):
    server = trainer("--max-train-steps", "5")
    r = _runs(server, {"out": "big", "max_steps": 6})
    assert r.status_code == 400 and "cap of 5 steps" in r.json()["error"]["message"]
    assert not (sec_home / "runs").exists() or not any((sec_home / "runs").iterdir())


def test_parallel_starts_run_one_job(trainer):
    server = trainer()
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda i: _runs(server, {"out": f"race{i}", "max_steps": 3}), range(6)))
    codes = sorted(r.status_code for r in answers)
    assert codes == [202, 409, 409, 409, 409, 409], [r.text for r in answers]
    run = next(r.json()["run"] for r in answers if r.status_code == 202)
    with server.client() as c:
        listed = c.get("/v1/runs").json()["data"]
        assert [r["run"] for r in listed] == [run]
        c.post(f"/v1/runs/{run}/cancel")


def test_the_wall_time_cap_stops_the_job(trainer):
    server = trainer("--max-train-minutes", "0.05")  # 3 seconds
    r = _runs(server, {"out": "slow", "max_steps": 2000})
    assert r.status_code == 202, r.text
    started = time.time()
    info = _wait(server, r.json()["run"], lambda i: i["status"] == "failed", timeout=90)
    assert "--max-train-minutes" in info["error"] and time.time() - started < 60
    with server.client() as c:
        assert c.post(f"/v1/runs/{r.json()['run']}/cancel").status_code == 409  # nothing left running
