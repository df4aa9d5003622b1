"""Attacks against a live `xuetu serve` over real HTTP (docs/security.md lists each one with its test).

Every server here runs on a throw-away XUETU_HOME holding hard links to the embedded SmolLM2, the embedded
embedder and the tiny model, so a destructive request can change nothing outside the test. `snapshot(home)`
records every file (size and modification time); tests assert that a refused request left it unchanged.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from helpers.env import home_env
from helpers.server import ServerProcess

KEY = "sec-key-123"


@pytest.fixture(scope="session")
def sec_models(tmp_path_factory, tiny_dir, embedded_home) -> Path:
    """A models folder with tiny:latest, smollm2:135m and all-minilm:l6-v2, built once per session."""
    home = tmp_path_factory.mktemp("sec-models")
    with home_env(home):
        from xuetu import models

        models.create("tiny:latest", tiny_dir, progress=False)
        shutil.copytree(embedded_home / "models" / "smollm2", home / "models" / "smollm2", copy_function=os.link)
        models.pull("all-minilm", progress=False)
    return home / "models"


def make_home(root: Path, sec_models: Path) -> Path:
    home = root / "xuetu-home"
    home.mkdir(parents=True)
    shutil.copytree(sec_models, home / "models", copy_function=os.link)
    return home


@pytest.fixture
def sec_home(tmp_path, sec_models) -> Path:
    """A throw-away XUETU_HOME for one test."""
    return make_home(tmp_path, sec_models)


@pytest.fixture
def serve(sec_home):
    """Start servers on this test's home: serve(*args, key=None, env=None) -> ServerProcess; all stopped after."""
    started = []

    def start(*args: str, key: str | None = None, env: dict | None = None, timeout: float = 60) -> ServerProcess:
        s = ServerProcess(sec_home, *args, key=key, env=env)
        started.append(s)
        return s.wait(timeout)

    yield start
    for s in started:
        s.stop()


@pytest.fixture(scope="module")
def keyless(tmp_path_factory, sec_models):
    """One keyless server for a module's read-only and refused-request tests, on its own home."""
    home = make_home(tmp_path_factory.mktemp("keyless"), sec_models)
    s = ServerProcess(home).wait()
    yield s
    s.stop()


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under root (logs left out: refused requests are logged; so is cache/facts, what listing the
    models read from their weight files, kept to list them fast), as (size, mtime_ns)."""
    out = {}
    for path in sorted(Path(root).rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not rel.startswith(("logs/", "server-", "cache/facts/")):
            st = path.stat()
            out[rel] = (st.st_size, st.st_mtime_ns)
    return out
