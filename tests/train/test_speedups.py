"""The training speed-ups change nothing but speed: packed attention without a mask gives the same loss
and gradients as the block-diagonal 4D mask, and the fused LoRA forward the same as PEFT's."""

import pytest
import torch
from transformers import AutoModelForCausalLM

from xuetu.train import attention
from xuetu.train.attention import NAME, block_causal, segments, use_packed_attention
from xuetu.train.loss import CausalLMLoss
from xuetu.train.packing import Sequence, collate


def test_segments_restart_at_zero():
    pos = torch.tensor([[0, 1, 2, 0, 1, 0], [3, 4, 0, 1, 0, 1]])
    assert segments(pos) == [[(0, 3), (3, 5), (5, 6)], [(0, 2), (2, 4), (4, 6)]]


def test_block_causal_mask_keeps_examples_apart():
    pos = torch.tensor([[0, 1, 2, 0, 1, 0]])
    mask = block_causal(pos)
    assert mask.shape == (1, 1, 6, 6) and mask.dtype == torch.bool
    assert mask[0, 0].tolist()[4] == [False, False, False, True, True, False]  # token 4 sees its example's 0..1
    assert mask[0, 0].tolist()[5] == [False] * 5 + [True]
    assert block_causal(pos) is mask  # every layer of one forward gets the mask built once
    assert block_causal(pos.clone()) is not mask


@pytest.mark.parametrize("path", ["pieces", "masked"])  # the CPU's loop, and the GPU's one call (run on the CPU)
def test_same_loss_and_gradients_as_the_4d_mask(tiny_dir, path, monkeypatch):
    calls = []
    chosen = getattr(attention, path)
    monkeypatch.setattr(attention, "pieces", lambda *a, **k: calls.append(path) or chosen(*a, **k))
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_dir, dtype=torch.float32)  # grouped-query: 4 heads, 2 kv
    seqs = [Sequence(list(range(5, 25)), list(range(5, 25)), list(range(8)) + list(range(12)), [0] * 8 + [1] * 12),
            Sequence(list(range(30, 44)), [-100] * 4 + list(range(34, 44)), list(range(14)), [0] * 14)]  # padded
    loss = CausalLMLoss(model)

    def run(batch):
        model.zero_grad()
        total, n = loss(**batch)
        total.backward()
        return float(total), int(n), [p.grad.clone() for p in model.parameters() if p.grad is not None]

    ref = run(collate(seqs, 0, torch.float32, four_d=True))
    impl = model.config._attn_implementation
    with use_packed_attention(model):
        assert model.config._attn_implementation == NAME
        got = run(collate(seqs, 0, torch.float32, four_d=False))
    assert model.config._attn_implementation == impl  # generation gets its own attention back
    assert abs(ref[0] - got[0]) < 1e-4 and ref[1] == got[1]
    assert len(ref[2]) == len(got[2]) and all(torch.allclose(a, b, atol=1e-6) for a, b in zip(ref[2], got[2]))
    assert calls and set(calls) == {path}


def test_generation_inside_the_context_still_works(tiny_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_dir, dtype=torch.float32)
    ids = torch.tensor([[1, 2, 3, 4]])
    want = model.generate(ids, max_new_tokens=5, do_sample=False)
    with use_packed_attention(model):
        assert torch.equal(model.generate(ids, max_new_tokens=5, do_sample=False), want)


def test_fused_lora_matches_peft(tiny_dir):
    from peft import LoraConfig, get_peft_model

    from xuetu.train.fused_lora import fused_lora

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tiny_dir, dtype=torch.float32)
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=16, target_modules="all-linear", init_lora_weights=False))
    ids = torch.randint(3, 100, (2, 12))

    def run():
        model.zero_grad()
        out = model(input_ids=ids, labels=ids)
        out.loss.backward()
        return float(out.loss), [p.grad.clone() for p in model.parameters() if p.requires_grad]

    ref = run()
    with fused_lora(model) as n:
        assert n == 14  # 7 linear layers in each of the 2 blocks
        got = run()
    assert "forward" not in vars(next(m for m in model.modules() if type(m).__name__ == "Linear" and hasattr(m, "lora_A")))
    assert abs(ref[0] - got[0]) < 1e-5
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(ref[1], got[1]))


def test_fused_linear_cross_entropy_matches_autograd():
    """LinearCrossEntropy gives the loss and the gradients (hidden states and weight) that the plain
    projection + F.cross_entropy give, across chunk boundaries and with a scaled loss."""
    import torch.nn.functional as F

    from xuetu.train import loss as L

    torch.manual_seed(0)
    h = torch.randn(37, 16, dtype=torch.float64, requires_grad=True)
    w = torch.randn(50, 16, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 50, (37,))
    chunk, L.CHUNK = L.CHUNK, 10  # several chunks, the last one short
    try:
        got = L.LinearCrossEntropy.apply(h, w, y)
        (got * 0.5).backward()
        gh, gw = h.grad.clone(), w.grad.clone()
        h.grad = w.grad = None
        want = F.cross_entropy(h @ w.t(), y, reduction="sum")
        (want * 0.5).backward()
    finally:
        L.CHUNK = chunk
    assert torch.allclose(got.double(), want, atol=1e-4)
    assert torch.allclose(gh, h.grad, atol=1e-5) and torch.allclose(gw, w.grad, atol=1e-5)  # softmax in fp32
    frozen = L.LinearCrossEntropy.apply(h.detach(), w.detach(), y)  # nothing requires a gradient: just the loss
    assert not frozen.requires_grad and torch.allclose(frozen.double(), want.detach(), atol=1e-4)


def test_causal_lm_loss_fused_and_plain_agree(tiny_dir):
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_dir, dtype=torch.float32)
    ids = torch.randint(3, 100, (2, 12))
    labels = ids.clone()
    labels[:, :5] = -100

    def run(fused):
        model.zero_grad()
        total, n = CausalLMLoss(model, fused=fused)(ids, labels, torch.ones_like(ids))
        total.backward()
        return float(total), int(n), [p.grad.clone() for p in model.parameters() if p.grad is not None]

    a, b = run(True), run(False)
    assert abs(a[0] - b[0]) < 1e-4 and a[1] == b[1] == 14
    assert len(a[2]) == len(b[2]) and all(torch.allclose(x, y, atol=1e-5) for x, y in zip(a[2], b[2]))


def test_packed_preference_rows_give_the_padded_rows_log_probabilities_and_gradients(tiny_dir):
    from peft import LoraConfig, get_peft_model

    from xuetu.train.finetune import packed_attention
    from xuetu.train.prefs import PrefExample, collate_prefs, sequence_logps

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tiny_dir, dtype=torch.float32)
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=16, target_modules="all-linear", init_lora_weights=False))
    # Two pairs of different lengths (the padded batch pads all four rows to 17): a shared prompt, then the answer.
    examples = [PrefExample(list(range(5, 17)), [-100] * 7 + list(range(12, 17)),
                            list(range(5, 12)) + list(range(40, 50)), [-100] * 7 + list(range(40, 50))),
                PrefExample(list(range(60, 69)), [-100] * 4 + list(range(64, 69)),
                            list(range(60, 64)) + [70, 71], [-100] * 4 + [70, 71])]

    def run(packed):
        model.zero_grad()
        batch = collate_prefs(examples, 0, packed=packed)
        with packed_attention(model, packed):
            lp = sequence_logps(model, **batch)
        (lp.sum[:2] - lp.sum[2:]).sum().backward()
        return batch, lp, [p.grad.clone() for p in model.parameters() if p.requires_grad]

    padded, want, want_grads = run(False)
    packed, got, got_grads = run(True)
    assert padded["input_ids"].shape == (4, 17) and packed["input_ids"].shape == (1, 12 + 9 + 17 + 6)
    assert got.tokens.tolist() == want.tokens.tolist() == [5, 5, 10, 2]
    assert torch.allclose(got.sum, want.sum, atol=1e-5) and torch.allclose(got.mean, want.mean, atol=1e-6)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(want_grads, got_grads))
