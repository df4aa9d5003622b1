"""GGUF written in Python, read by llama.cpp: tiny random Llama and Qwen2 models and the embedded SmolLM2."""

from __future__ import annotations

import numpy as np
import pytest

from xuetu import models
from xuetu.errors import XuetuError
from xuetu.export.gguf import permute_rope, write_gguf
from xuetu.export.verify import precision, verify


def read(path):
    from gguf import GGUFReader

    r = GGUFReader(str(path))
    return {k: f.contents() for k, f in r.fields.items() if not k.startswith("tokenizer.ggml.") or k.endswith(("pre", "model", "_id"))}, \
        {t.name: t.tensor_type.name for t in r.tensors}


def test_permute_rope_interleaves_halves_per_head():
    w = np.arange(8, dtype=np.float32).reshape(8, 1)  # 2 heads of 4 rows: halves (0,1 | 2,3), (4,5 | 6,7)
    assert permute_rope(w, 2).ravel().tolist() == [0, 2, 1, 3, 4, 6, 5, 7]


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
@pytest.mark.parametrize("quant", ["f16", "q8_0"])
def test_tiny_models_round_trip_and_verify(arch, quant, tiny_dir, qwen_dir, tmp_path):
    ref = models.create("tiny:latest", tiny_dir if arch == "llama" else qwen_dir, progress=False)
    out = write_gguf(ref.hf_dir, tmp_path / "m.gguf", quant)
    meta, tensors = read(out)
    assert meta["general.architecture"] == arch
    assert meta["tokenizer.ggml.model"] == "gpt2" and meta["tokenizer.ggml.pre"] == "gpt-2"
    assert meta["tokenizer.chat_template"] == ref.hf_dir.joinpath("chat_template.jinja").read_text() or \
        "im_start" in meta["tokenizer.chat_template"]
    assert meta["tokenizer.ggml.eos_token_id"] == 2 and f"{arch}.rope.freq_base" in meta
    assert tensors["blk.0.attn_norm.weight"] == "F32"
    assert tensors["blk.0.attn_q.weight"] == quant.upper()
    if arch == "qwen2":
        assert "blk.0.attn_q.bias" in tensors and "output.weight" not in tensors  # biases kept, tied head left out
    else:
        assert "output.weight" in tensors
    report = verify(ref, out, progress=False)
    assert report.ok, report.text()
    assert precision(out) == quant.upper()
    names = [c.name for c in report.checks]
    assert names == ["chat template", "tokenizer", "next-token agreement", "greedy answers"]


def test_embedded_model_f16_matches_transformers(smollm2, tmp_path):
    out = write_gguf(smollm2.hf_dir, tmp_path / "smollm2-f16.gguf", "f16")
    meta, _ = read(out)
    assert meta["llama.context_length"] == 8192 and meta["llama.rope.freq_base"] == 100000.0
    assert meta["llama.attention.head_count_kv"] == 3
    report = verify(smollm2, out, progress=False)
    assert report.ok, report.text()
    greedy = next(c for c in report.checks if c.name == "greedy answers")
    assert greedy.detail.startswith(("4/5", "5/5")), greedy.detail
    agree = next(c for c in report.checks if c.name == "next-token agreement")
    assert agree.detail.startswith(("100.0%", "99.")), agree.detail


def test_q4_0_of_the_embedded_model_is_caught_as_worse(smollm2, tmp_path):
    """SmolLM2-135M loses too much at Q4_0; verification says so instead of shipping it."""
    out = write_gguf(smollm2.hf_dir, tmp_path / "q4.gguf", "q4_0")
    report = verify(smollm2, out, progress=False)
    agree = next(c for c in report.checks if c.name == "next-token agreement")
    assert not agree.passed and "need 80%" in agree.detail
    assert "FAIL next-token agreement" in report.text()


def test_unknown_quant_and_architecture_are_refused(tiny_dir, tmp_path):
    import json
    import shutil

    with pytest.raises(XuetuError, match="q3_k"):
        write_gguf(tiny_dir, tmp_path / "x.gguf", "q3_k")
    odd = shutil.copytree(tiny_dir, tmp_path / "odd")
    cfg = json.loads((odd / "config.json").read_text())
    (odd / "config.json").write_text(json.dumps({**cfg, "model_type": "gpt_neox"}))
    with pytest.raises(XuetuError, match="gpt_neox") as e:
        write_gguf(odd, tmp_path / "x.gguf", "f16")
    assert "--format hf" in e.value.hint
    assert not (tmp_path / "x.gguf").exists() and not (tmp_path / "x.gguf.partial").exists()


def test_unknown_pre_tokenizer_is_refused_not_guessed():
    from xuetu.export.gguf_vocab import pre_tokenizer_name

    assert pre_tokenizer_name({"pre_tokenizer": {"type": "ByteLevel", "use_regex": True}}) == "gpt-2"
    with pytest.raises(XuetuError, match="Metaspace"):
        pre_tokenizer_name({"pre_tokenizer": {"type": "Metaspace"}})
