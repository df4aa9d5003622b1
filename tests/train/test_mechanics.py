"""Packing, masks, the loss and checkpoints, on a tiny random model."""

import math

import pytest
import torch
from transformers import AutoModelForCausalLM

from helpers.tiny import build_tokenizer
from xuetu.data import to_record, tokenize_for_training
from xuetu.data.template import IGNORE, TrainingExample
from xuetu.train import checkpoint
from xuetu.train.loss import CausalLMLoss
from xuetu.train.optim import build_optimizer, build_scheduler
from xuetu.train.packing import collate, one_per_sequence, pack_sequences


def examples(n=7):
    tok = build_tokenizer()
    recs = [to_record({"question": f"What is fact {i}? " + "detail " * (i % 4), "answer": f"Fact {i} is true."})
            for i in range(n)]
    return tok, [tokenize_for_training(tok, r) for r in recs]


def test_packing_places_everything_within_length():
    _, exs = examples(9)
    limit = max(len(e.input_ids) for e in exs) * 2
    seqs = pack_sequences(exs, limit)
    assert len(seqs) < len(exs)
    assert all(len(s.input_ids) <= limit for s in seqs)
    assert sorted(sum((s.input_ids for s in seqs), [])) == sorted(sum((e.input_ids for e in exs), []))
    for s in seqs:  # positions restart for every example
        starts = [i for i, p in enumerate(s.position_ids) if p == 0]
        assert starts == [i for i in range(len(s.segments)) if i == 0 or s.segments[i] != s.segments[i - 1]]


def test_mask_is_block_diagonal_causal():
    _, exs = examples(3)
    seqs = pack_sequences(exs, 1000)
    batch = collate(seqs, 0, torch.float32)
    mask = batch["attention_mask"][0, 0]  # (T, T)
    seg = torch.tensor(seqs[0].segments)
    allowed = mask == 0
    T = len(seg)
    expected = torch.tril(torch.ones(T, T, dtype=torch.bool)) & (seg[:, None] == seg[None, :])
    assert torch.equal(allowed[:T, :T], expected)


@pytest.fixture(scope="module")
def tiny_model(tiny_dir):
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_pretrained(tiny_dir).eval()


def test_packed_loss_equals_separate_losses(tiny_model):
    """No example sees another: the packed batch gives the same loss as each example on its own."""
    tok, exs = examples(5)
    loss = CausalLMLoss(tiny_model)
    with torch.no_grad():
        packed = collate(pack_sequences(exs, 10_000), tok.pad_token_id, torch.float32)
        total_p, n_p = loss(**packed)
        total_s = n_s = 0
        for e in exs:
            t, n = loss(**collate(one_per_sequence([e]), tok.pad_token_id, torch.float32))
            total_s, n_s = total_s + t, n_s + n
    assert int(n_p) == int(n_s)
    assert torch.allclose(total_p, total_s, rtol=1e-4)


def test_efficient_loss_matches_the_model_loss(tiny_model):
    tok, exs = examples(4)
    batch = collate(one_per_sequence(exs), tok.pad_token_id, torch.float32, four_d=False)
    with torch.no_grad():
        total, n = CausalLMLoss(tiny_model)(**batch)
        reference = tiny_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]).loss
    assert math.isclose(float(total / n), float(reference), rel_tol=1e-4)
    assert int(n) == int((batch["labels"][:, 1:] != IGNORE).sum())


def test_schedule_warms_up_then_decays():
    opt = build_optimizer(torch.nn.Linear(2, 2), 1.0, 0.1)
    sched = build_scheduler(opt, total_steps=10, warmup=2, kind="cosine")
    lrs = []
    for _ in range(10):
        lrs.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    assert lrs[0] == 0.5 and lrs[1] == 1.0 and lrs[-1] < 0.05
    assert all(a >= b for a, b in zip(lrs[1:], lrs[2:]))  # decays after the warm-up


def test_checkpoint_round_trip_and_atomic_latest(tmp_path, tiny_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_dir)
    opt = build_optimizer(model, 1e-3, 0.0)
    sched = build_scheduler(opt, 10, 0, "constant")
    trainable = {n: p.detach().clone() for n, p in model.named_parameters()}
    checkpoint.save(tmp_path, 2, trainable, opt.state_dict(), "position", sched, {"epoch": 1, "micro": 3})
    (tmp_path / "checkpoints" / ".tmp-deadbeef").mkdir()  # a write killed half way
    first = next(model.parameters())
    with torch.no_grad():
        saved = first.clone()
        first.add_(1.0)
    path = checkpoint.latest(tmp_path)
    assert path.name == "step-000002"
    saved_state = checkpoint.read(path)
    assert saved_state.state == {"epoch": 1, "micro": 3, "step": 2} and saved_state.optimizer_keys == "position"
    assert torch.equal(saved_state.weights[next(iter(trainable))], saved)
    assert saved_state.scheduler == sched.state_dict()
    for step in (4, 6, 8):
        checkpoint.save(tmp_path, step, trainable, opt.state_dict(), "position", sched, {})
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["latest", "step-000006", "step-000008"]  # old ones pruned, stale temp removed
