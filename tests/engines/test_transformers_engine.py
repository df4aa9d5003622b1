"""The transformers engine on a tiny random model (mechanics) — the real model is in test_embedded.py."""

import pytest

from xuetu import engines, models
from xuetu.engines.base import Engine, GenerateOptions
from xuetu.errors import ContextTooLong, XuetuError

MSGS = [{"role": "user", "content": "What is LoRA?"}]


def run(engine, prompt, **opts):
    chunks = list(engine.generate(prompt, GenerateOptions(**opts)))
    return "".join(c.text for c in chunks), chunks


@pytest.fixture
def engine(tiny):
    return engines.load("tiny:latest", engine="transformers")


def test_streams_chunks_with_counts(engine):
    assert isinstance(engine, Engine)
    text, chunks = run(engine, MSGS, temperature=0, max_tokens=12, repeat_penalty=1.0)
    assert text
    last = chunks[-1]
    assert last.finish_reason in ("stop", "length")
    assert all(c.finish_reason is None for c in chunks[:-1])
    assert last.prompt_tokens == engine.count_tokens(MSGS)
    counts = [c.completion_tokens for c in chunks]
    assert counts == sorted(counts) and 1 <= last.completion_tokens <= 12


def test_max_tokens_gives_length(engine):
    _, chunks = run(engine, "The capital of", temperature=0, max_tokens=5)
    assert chunks[-1].finish_reason in ("length", "stop")
    assert chunks[-1].completion_tokens <= 5


def test_greedy_and_seeded_runs_repeat(engine):
    assert run(engine, MSGS, temperature=0, max_tokens=10)[0] == run(engine, MSGS, temperature=0, max_tokens=10)[0]
    a = run(engine, MSGS, temperature=1.5, top_k=0, max_tokens=10, seed=3)[0]
    assert a == run(engine, MSGS, temperature=1.5, top_k=0, max_tokens=10, seed=3)[0]


def test_stop_string_cuts_the_answer(engine):
    full, _ = run(engine, MSGS, temperature=0, max_tokens=20)
    assert len(full) > 3
    stop = full[2:4]
    text, chunks = run(engine, MSGS, temperature=0, max_tokens=20, stop=[stop])
    assert stop not in text and full.startswith(text)
    assert chunks[-1].finish_reason == "stop"


def test_chat_template_is_used(engine):
    ids = engine.encode(MSGS)
    rendered = engine.tokenizer.decode(ids)
    assert rendered == "<|im_start|>user\nWhat is LoRA?<|im_end|>\n<|im_start|>assistant\n"


def test_context_too_long(engine):
    with pytest.raises(ContextTooLong, match="holds 128"):
        list(engine.generate("Paris " * 200))


def test_bad_messages(engine):
    for bad in ([], [{"content": "x"}], [{"role": "wizard", "content": "x"}], [{"role": "user", "content": 5}], {}):
        with pytest.raises(XuetuError):
            list(engine.generate(bad))


def test_lora_adapter_changes_output(tiny, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny.hf_dir)
    cfg = LoraConfig(r=8, lora_alpha=64, target_modules=["q_proj", "v_proj", "o_proj"], init_lora_weights=False)
    get_peft_model(base, cfg).save_pretrained(tmp_path / "adapter")
    models.create("tiny-lora:v1", tmp_path / "adapter")
    plain = engines.load("tiny:latest")
    tuned = engines.load("tiny-lora:v1")
    assert tuned.info()["adapter"] is True and engines.choose(models.resolve("tiny-lora:v1")) == "transformers"
    a = run(plain, MSGS, temperature=0, max_tokens=15, repeat_penalty=1.0)[0]
    b = run(tuned, MSGS, temperature=0, max_tokens=15, repeat_penalty=1.0)[0]
    assert a != b


def test_base_model_refuses_chat_messages(tmp_path, xuetu_home):
    from helpers.tiny import build_tiny_model

    models.create("tinybase:latest", build_tiny_model(tmp_path / "b", chat=False))
    ref = models.resolve("tinybase")
    assert ref.kind == "base"
    eng = engines.load(ref)
    with pytest.raises(XuetuError, match="no chat template"):
        list(eng.generate(MSGS))
    assert run(eng, "The capital", temperature=0, max_tokens=3)[1][-1].completion_tokens >= 1


def test_engine_choice(tiny):
    assert engines.choose(tiny) == "transformers"  # no GGUF
    with pytest.raises(XuetuError, match="unknown engine"):
        engines.choose(tiny, "tensorrt")
    with pytest.raises(XuetuError, match="no GGUF"):
        engines.load(tiny, engine="llama.cpp")


def test_vllm_is_guarded_on_cpu(tiny):
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vLLM is installed here")
    assert "vllm" in engines.names() and not engines.is_available("vllm")
    with pytest.raises(XuetuError, match="vllm engine is not installed") as e:
        engines.choose(tiny, "vllm")
    assert "GPU" in e.value.hint
