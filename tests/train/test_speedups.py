"""The training speed-ups change nothing but speed: packed attention without a mask gives the same loss
and gradients as the block-diagonal 4D mask, and the fused LoRA forward the same as PEFT's."""

import torch
from transformers import AutoModelForCausalLM

from xuetu.train.attention import NAME, segments, use_packed_attention
from xuetu.train.loss import CausalLMLoss
from xuetu.train.packing import Sequence, collate


def test_segments_restart_at_zero():
    pos = torch.tensor([[0, 1, 2, 0, 1, 0], [3, 4, 0, 1, 0, 1]])
    assert segments(pos) == [[(0, 3), (3, 5), (5, 6)], [(0, 2), (2, 4), (4, 6)]]


def test_same_loss_and_gradients_as_the_4d_mask(tiny_dir):
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
