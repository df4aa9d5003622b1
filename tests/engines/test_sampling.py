import pytest
import torch

from xuetu.engines.base import GenerateOptions
from xuetu.engines.sampling import apply_repeat_penalty, sample_next
from xuetu.errors import XuetuError


def logits():
    torch.manual_seed(0)
    return torch.randn(3, 50)


def test_greedy_is_argmax():
    x = logits()
    assert torch.equal(sample_next(x, GenerateOptions(temperature=0), None), x.argmax(-1))


@pytest.mark.parametrize("opts", [dict(top_k=1), dict(top_p=1e-6)])
def test_narrow_sampling_equals_greedy(opts):
    x = logits()
    o = GenerateOptions(temperature=1.0, **opts)
    for seed in range(5):
        assert torch.equal(sample_next(x, o, torch.Generator().manual_seed(seed)), x.argmax(-1))


def test_seed_reproducible_and_varied():
    x = torch.zeros(1, 1000)  # uniform: any token may come
    o = GenerateOptions(temperature=1.0, top_k=0, top_p=1.0)
    draws = [int(sample_next(x, o, torch.Generator().manual_seed(7))) for _ in range(3)]
    assert len(set(draws)) == 1
    many = {int(sample_next(x, o, torch.Generator().manual_seed(s))) for s in range(20)}
    assert len(many) > 10


def test_top_k_restricts_to_k_tokens():
    x = torch.arange(10.0).unsqueeze(0)
    o = GenerateOptions(temperature=5.0, top_k=3, top_p=1.0)
    seen = {int(sample_next(x, o, torch.Generator().manual_seed(s))) for s in range(200)}
    assert seen == {7, 8, 9}


def test_repeat_penalty():
    x = torch.tensor([[2.0, -2.0, 1.0]])
    out = apply_repeat_penalty(x, torch.tensor([[0, 1]]), 2.0)
    assert out.tolist() == [[1.0, -4.0, 1.0]]


@pytest.mark.parametrize("bad", [dict(temperature=-1), dict(top_p=0), dict(top_p=1.5), dict(top_k=-1),
                                 dict(max_tokens=0), dict(seed="x"), dict(stop=[""]), dict(repeat_penalty=0),
                                 dict(temperature="hot"), dict(max_tokens=True)])
def test_options_are_validated(bad):
    with pytest.raises(XuetuError):
        GenerateOptions(**bad)


def test_options_layering():
    o = GenerateOptions.build({"temperature": 0.2, "top_p": 0.9, "unknown": 1}, temperature=0.5, top_k=None)
    assert (o.temperature, o.top_p, o.top_k) == (0.5, 0.9, 40)
