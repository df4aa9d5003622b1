"""Proof that fine-tuning teaches: LoRA on the embedded SmolLM2-135M with made-up facts it cannot know."""

import json
import os
import subprocess
import sys

import pytest

from helpers.facts import held_out, write_facts
from xuetu import engines
from xuetu.engines.base import GenerateOptions
from xuetu.metrics import keyword_hit_rate

pytestmark = pytest.mark.slow


def answers(name: str, engine: str = "transformers") -> list[str]:
    engine = engines.load(name, engine=engine)
    return ["".join(c.text for c in engine.generate([{"role": "user", "content": q}],
                                                    GenerateOptions(temperature=0, max_tokens=24)))
            for q, _ in held_out()]


def test_lora_learns_made_up_facts(tmp_path, smollm2, monkeypatch):
    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    import shutil

    # the embedded model, hard-linked into a store this test may change
    shutil.copytree(smollm2.path.parent.parent, home / "models" / "smollm2", copy_function=os.link)
    monkeypatch.setenv("XUETU_HOME", str(home))
    keywords = [[kw] for _, kw in held_out()]
    before = keyword_hit_rate(answers("smollm2:135m"), keywords)
    data = write_facts(tmp_path / "facts.jsonl")
    # the command from the issue, with its defaults
    out = subprocess.run([sys.executable, "-m", "xuetu", "finetune", "--model", "smollm2:135m", "--data", str(data),
                          "--method", "lora", "--out", "facts"], capture_output=True, text=True, timeout=900,
                         env={**os.environ, "XUETU_HOME": str(home), "HF_HUB_OFFLINE": "1"})
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    after = keyword_hit_rate(answers("facts"), keywords)
    assert before <= 1 / 6 and after >= 4 / 6, (before, after)  # from about none to a clear majority
    report = json.loads((home / "runs" / "facts-latest" / "report.json").read_text())
    assert report["tuned"]["perplexity"] < report["base"]["perplexity"]

    # The tuned model exported with no compiler: a verified GGUF and an Ollama folder, which llama.cpp serves
    # knowing the facts.
    env = {**os.environ, "XUETU_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    for args in (["--format", "gguf", "--quant", "q8_0"], ["--format", "ollama", "--out", str(tmp_path / "ollama")]):
        out = subprocess.run([sys.executable, "-m", "xuetu", "export", "facts", *args], capture_output=True, text=True,
                             timeout=600, env=env)
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
        assert "ok   chat template: 4/4" in out.stdout and "FAIL" not in out.stdout, out.stdout[-2000:]
    assert (tmp_path / "ollama" / "Modelfile").read_text().count("ADAPTER ./adapter.gguf") == 1
    for name in ("facts:q8_0", "facts:ollama"):
        assert keyword_hit_rate(answers(name, engine="llama.cpp"), keywords) >= 4 / 6, name
