"""Perplexity: one window equals the model's own loss; sliding windows over a long text equal a plain loop
after the Hugging Face guide; every token after the first is scored once; short texts are skipped."""

from __future__ import annotations

import math

import pytest

from xuetu.errors import XuetuError
from xuetu.evaluate.perplexity import model_max_length, perplexity, windows

LONG = ("The apprentice sweeps the workshop at dawn, sharpens the chisels, and watches the master carve. "
        "Years pass; the cuts grow cleaner, the joints tighter, and one winter the master hands over the mallet. ") * 4


def load():
    from xuetu import engines

    eng = engines.load("smollm2:135m", engine="transformers")
    return eng.model, eng.tokenizer


def guide_loop(model, ids, max_length, stride):
    """The guide's loop, with the count of labels the model really scores (it shifts them by one)."""
    import torch

    nll, count, prev_end = 0.0, 0, 0
    with torch.inference_mode():
        for begin in range(0, ids.size(1), stride):
            end = min(begin + max_length, ids.size(1))
            trg_len = end - prev_end
            inputs = ids[:, begin:end]
            labels = inputs.clone()
            labels[:, :-trg_len] = -100
            n = int((labels[:, 1:] != -100).sum())
            nll += model(inputs, labels=labels).loss.item() * n
            count += n
            prev_end = end
            if end == ids.size(1):
                break
    return nll, count


def test_one_window_equals_the_models_own_loss(smollm2):
    import torch

    model, tok = load()
    text = "The capital of France is Paris, and the capital of China is Beijing."
    ids = tok(text, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        loss = model(ids, labels=ids).loss.item()
    r = perplexity(model, tok, [text], progress=False)
    assert r.perplexity == pytest.approx(math.exp(loss), rel=1e-4) and r.nll == pytest.approx(loss, rel=1e-4)
    assert r.tokens == ids.size(1) - 1 and r.per_text == [pytest.approx(r.perplexity)] and r.skipped == 0


def test_sliding_windows_equal_the_guide_loop_and_each_text_stands_alone(smollm2):
    model, tok = load()
    text = LONG[:len(LONG) // 2]
    ids = tok(text, return_tensors="pt")["input_ids"]
    assert ids.size(1) > 80
    nll, count = guide_loop(model, ids, max_length=32, stride=12)
    short = "A chisel is a tool."
    r = perplexity(model, tok, [short, text, "", "x"], max_length=32, stride=12, batch_size=3, progress=False)
    assert count == ids.size(1) - 1  # every token after the first, once
    assert r.per_text[1] == pytest.approx(math.exp(nll / count), rel=1e-4)
    assert r.per_text[0] == pytest.approx(perplexity(model, tok, [short], progress=False).perplexity, rel=1e-4)
    assert r.skipped == 2 and len(r.per_text) == 4  # "" has no token and "x" one (SmolLM2 adds no BOS)
    assert math.isnan(r.per_text[2]) and math.isnan(r.per_text[3])
    n_short = len(tok(short)["input_ids"]) - 1
    assert r.tokens == count + n_short
    assert r.nll == pytest.approx((nll + math.log(r.per_text[0]) * n_short) / r.tokens, rel=1e-4)


def test_windows_cover_each_token_once():
    for n, max_length, stride in [(2, 4, 2), (10, 4, 3), (100, 16, 5), (33, 8, 7), (7, 8, 4)]:
        scored = [p for _, end, first in windows(n, max_length, stride) for p in range(first, end)]
        assert scored == list(range(1, n))
        assert all(end - begin <= max_length for begin, end, _ in windows(n, max_length, stride))


def test_bos_is_added_when_the_tokenizer_adds_it_and_the_window_fits_the_model(tiny_dir):
    import torch
    from tokenizers.processors import TemplateProcessing
    from transformers import AutoModelForCausalLM

    from helpers.tiny import build_tokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_dir, dtype=torch.float32).eval()
    plain = build_tokenizer()
    with_bos = build_tokenizer()
    bos = [("<|im_start|>", with_bos.bos_token_id)]
    with_bos._tokenizer.post_processor = TemplateProcessing(single="<|im_start|> $A", special_tokens=bos)
    one = "a"  # a single token: skipped alone, scored after a BOS
    assert len(plain(one)["input_ids"]) == 1 and len(with_bos(one)["input_ids"]) == 2
    assert perplexity(model, with_bos, [one, "Paris"], progress=False).skipped == 0
    with pytest.raises(XuetuError, match="shorter than 2 tokens"):
        perplexity(model, plain, [one, ""], progress=False)
    assert model_max_length(model, plain) == 128  # the tokenizer has no limit; the config holds 128
    ids = with_bos(LONG, return_tensors="pt")["input_ids"]
    assert ids.size(1) > 300
    nll, count = guide_loop(model, ids, max_length=128, stride=127)  # 1024 / 512 asked: capped to fit 128
    r = perplexity(model, with_bos, [LONG], progress=False)
    assert r.tokens == count == ids.size(1) - 1 and r.perplexity == pytest.approx(math.exp(nll / count), rel=1e-4)
