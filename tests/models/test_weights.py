"""No hidden network at load or train time: transformers' hub kernels stay off unless the user opts in.

transformers 5 kernelizes a model loaded with from_pretrained when the `kernels` package is installed. On a
GPU, `model.train()` then resolves `kernels-community/rotary` on the Hugging Face Hub: offline it raised at
every training step (measured on a lent H200), online it downloads and runs third-party code. The tests below
take that same path on the CPU by making transformers and `kernels` see a CUDA device (a Hopper, capability
9.0); the kernels library itself then runs for real and reaches for the (offline) Hub.
"""

import re
from pathlib import Path

import pytest
import torch

from xuetu.models import weights

SRC = Path(__file__).parents[2] / "src" / "xuetu"
OFFLINE = "not available in the local cache and Hugging Face Hub is in offline mode"


@pytest.fixture
def as_if_on_a_gpu(monkeypatch):
    pytest.importorskip("kernels", reason="without the kernels package transformers has no hub-kernel path")
    import transformers.integrations.hub_kernels as hub_kernels

    if not callable(getattr(hub_kernels, "_kernels_enabled", None)):  # before 5.2x: off unless use_kernels=True
        pytest.skip("this transformers does not turn hub kernels on by default")
    monkeypatch.setattr(hub_kernels, "get_device_type", lambda *a, **k: "cuda")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a, **k: (9, 0))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_transformers_own_default_reaches_for_the_hub(tiny_dir, as_if_on_a_gpu, monkeypatch):
    """The control: without xuetu's setting, the simulated GPU reproduces the crash seen on the H200."""
    from transformers import AutoModelForCausalLM

    monkeypatch.setenv("USE_HUB_KERNELS", "YES")
    with pytest.raises(ValueError, match=OFFLINE):  # loading alone already kernelizes, for inference
        AutoModelForCausalLM.from_pretrained(tiny_dir).train()


def test_xuetu_loads_and_trains_with_hub_kernels_off(tiny_dir, as_if_on_a_gpu, monkeypatch):
    from xuetu.train import methods

    monkeypatch.setenv("USE_HUB_KERNELS", "YES")  # left in the shell from other work: xuetu's setting wins
    for model in (weights.causal_lm(tiny_dir), methods.load_plain(tiny_dir, None, torch.float32)):
        assert not model.use_kernels
        model.train()
        ids = torch.tensor([[1, 2, 3, 4]])
        model(input_ids=ids, labels=ids).loss.backward()  # a training step's forward and backward
        model.eval()
    import os

    assert os.environ["USE_HUB_KERNELS"] == "NO"


def test_opting_in_takes_the_kernels_path(tiny_dir, as_if_on_a_gpu, monkeypatch):
    monkeypatch.setenv(weights.ENV, "1")
    monkeypatch.setenv("USE_HUB_KERNELS", "YES")
    assert weights.hub_kernels_allowed()
    with pytest.raises(ValueError, match=OFFLINE):  # it did ask the kernels library for the Hub's kernel
        weights.causal_lm(tiny_dir).train()


def test_every_model_load_in_xuetu_goes_through_the_guarded_loader():
    """A new from_pretrained of a model elsewhere would bring the default (kernels on) back."""
    offenders = []
    for path in SRC.rglob("*.py"):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"AutoModelFor\w+\.from_pretrained\(", line) and path.name != "weights.py":
                offenders.append(f"{path.relative_to(SRC)}:{n}")
    assert offenders == []


def test_nothing_in_xuetu_fetches_code_at_run_time():
    pattern = re.compile(r"trust_remote_code\s*=\s*True|get_kernel\(|torch\.hub\.load|allow_all_kernels\s*=\s*True|"
                         r"kernelize\(")
    hits = [f"{p.relative_to(SRC)}" for p in SRC.rglob("*.py") if pattern.search(p.read_text(encoding="utf-8"))]
    assert hits == []
