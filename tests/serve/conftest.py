"""A store with the tiny model, two LoRA adapters over it, the embedded SmolLM2 and the embedded
embedder, served by real `xuetu serve` processes."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from helpers.env import home_env
from helpers.server import ServerProcess

KEY = "test-key-123"


def _link_tree(src, dst):
    shutil.copytree(src, dst, copy_function=os.link)


@pytest.fixture(scope="session")
def serve_home(tmp_path_factory, tiny_dir, embedded_home):
    home = tmp_path_factory.mktemp("serve-home")
    with home_env(home):
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM

        from xuetu import models

        models.create("tiny:latest", tiny_dir, progress=False)
        base = models.resolve("tiny:latest")
        for name, seed in (("tiny-lora:a", 1), ("tiny-lora:b", 2)):
            import torch

            torch.manual_seed(seed)
            model = AutoModelForCausalLM.from_pretrained(base.hf_dir)
            cfg = LoraConfig(r=8, lora_alpha=64, target_modules=["q_proj", "v_proj", "o_proj"], init_lora_weights=False)
            out = home / f"adapter-{seed}"
            get_peft_model(model, cfg).save_pretrained(out)
            models.create(name, out, progress=False)
        _link_tree(embedded_home / "models" / "smollm2", home / "models" / "smollm2")
        models.pull("all-minilm", progress=False)
    return home


@pytest.fixture(scope="session")
def server(serve_home):
    """The main server: default limits, an API key; training steps uncapped, so a run outlasts its cancel test."""
    s = ServerProcess(serve_home, "--max-batch", "16", "--max-train-steps", "100000", key=KEY).wait()
    yield s
    s.stop()


@pytest.fixture(scope="session")
def openai_client(server):
    import openai

    return openai.OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0, timeout=120)


@pytest.fixture(scope="session")
def ollama_client(server):
    import ollama

    return ollama.Client(host=server.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=120)


PLANTED = "<img src=x onerror=\"document.title='pwned'\">"


@pytest.fixture(scope="session")
def report_name(serve_home, tmp_path_factory):
    """A real report written by xuetu eval into the served home, one question carrying planted HTML."""
    from xuetu.evaluate.report import write_eval
    from xuetu.evaluate.run import EvalSpec, evaluate

    data = tmp_path_factory.mktemp("evaldata") / "web-qa.jsonl"
    rows = [{"question": "What is LoRA?", "answer": "A low-rank adapter."},
            {"question": f"Repeat {PLANTED}", "answer": "no"}, {"question": "什么是分词？", "answer": "切分文本。"}]
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    with home_env(serve_home):
        path = write_eval(evaluate(EvalSpec(model="tiny:latest", data=str(data), max_tokens=6), progress=False))
    return path.name
