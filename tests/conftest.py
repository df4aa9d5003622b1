"""Shared fixtures. Every test gets its own XUETU_HOME; the real embedded model is pulled once per session.

Before anything imports, the whole session moves into an empty sandbox: HOME, the XDG folders, XUETU_HOME
and the Hugging Face and torch caches all point inside a new temporary folder, so nothing that an earlier
run or the user cached (a trained model, a downloaded file, a setting) can change an outcome. A fresh
machine and this one then run the same suite.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

SANDBOX = Path(tempfile.mkdtemp(prefix="xuetu-tests-"))
atexit.register(shutil.rmtree, SANDBOX, ignore_errors=True)
for _var, _sub in {"HOME": "home", "XDG_CACHE_HOME": "home/.cache", "XDG_CONFIG_HOME": "home/.config",
                   "XDG_DATA_HOME": "home/.local/share", "XUETU_HOME": "xuetu-home", "HF_HOME": "hf-home",
                   "TORCH_HOME": "torch-home", "MPLCONFIGDIR": "home/.config/matplotlib"}.items():
    (SANDBOX / _sub).mkdir(parents=True, exist_ok=True)
    os.environ[_var] = str(SANDBOX / _sub)
for _var in ("XUETU_HUB", "XUETU_PROGRESS", "HF_TOKEN", "HF_HUB_CACHE", "TRANSFORMERS_CACHE",
             "SENTENCE_TRANSFORMERS_HOME", "OPENAI_API_KEY", "OPENAI_BASE_URL", "XUETU_HUB_KERNELS", "USE_HUB_KERNELS"):
    os.environ.pop(_var, None)

import pytest  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))

from helpers.env import home_env  # noqa: E402
from helpers.tiny import build_tiny_model  # noqa: E402

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ["HF_HUB_OFFLINE"] = "1"


@pytest.fixture(autouse=True)
def xuetu_home(tmp_path, monkeypatch):
    home = tmp_path / "xuetu-home"
    monkeypatch.setenv("XUETU_HOME", str(home))
    # No test may reach a real hub: point both at a closed local port unless a test sets its own.
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("MODELSCOPE_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.delenv("XUETU_HUB", raising=False)
    return home


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    """A tiny random chat model folder (2 layers, hidden 32), built once per session."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-chat")


@pytest.fixture
def tiny(tiny_dir, xuetu_home):
    """The tiny model added to this test's store as tiny:latest."""
    from xuetu import models

    return models.create("tiny:latest", tiny_dir, progress=False)


@pytest.fixture(scope="session")
def embedded_home(tmp_path_factory) -> Path:
    """A store holding the real embedded default model, pulled once per session."""
    home = tmp_path_factory.mktemp("embedded-home")
    with home_env(home):
        from xuetu import models

        models.pull("smollm2:135m", progress=False)
    return home


@pytest.fixture
def smollm2(embedded_home, monkeypatch):
    """The embedded SmolLM2-135M-Instruct, in a store the test must not modify."""
    monkeypatch.setenv("XUETU_HOME", str(embedded_home))
    from xuetu import models

    return models.resolve("smollm2:135m")


@pytest.fixture
def smollm2_home(embedded_home, xuetu_home, monkeypatch):
    """A store of this test's own holding the embedded model (hard links: free), so exports can be added."""
    import shutil

    from xuetu.models.store import link_or_copy

    shutil.copytree(embedded_home / "models", xuetu_home / "models", copy_function=link_or_copy)
    from xuetu import models

    return models.resolve("smollm2:135m")


TOOL_TUNED = "smollm2-tools:latest"
TOOL_RECIPE = ["epochs=3", "min_steps=0", "batch_size=1", "grad_accum=4"]  # the CPU LoRA recipe, lighter per step


@pytest.fixture(scope="session")
def tool_tuned(tmp_path_factory, embedded_home):
    """The embedded SmolLM2-135M with a LoRA that `xuetu finetune` trained on helpers.tooldata's train set, in a
    store of its own: (home, model name, held-out file). Some minutes on 2 cores, so only slow tests use it."""
    import subprocess

    from helpers.tooldata import write
    from xuetu.models.store import link_or_copy

    root = tmp_path_factory.mktemp("tool-tuned")
    shutil.copytree(embedded_home / "models", root / "home" / "models", copy_function=link_or_copy)
    train, held = write(root / "data")
    sets = [arg for s in TOOL_RECIPE for arg in ("--set", s)]
    out = subprocess.run([sys.executable, "-m", "xuetu", "finetune", "--data", str(train), "--method", "lora",
                          "--out", TOOL_TUNED, *sets], capture_output=True, text=True, timeout=1800,
                         env={**os.environ, "XUETU_HOME": str(root / "home"), "XUETU_PROGRESS": "0"})
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return root / "home", TOOL_TUNED, held


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium (Debian's), one per test module. Not one per session: Playwright's sync API holds an
    event loop on the main thread while it is open, and a later test's asyncio.run() would then refuse to start."""
    from playwright.sync_api import sync_playwright

    from helpers.browser import launch

    with sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()
