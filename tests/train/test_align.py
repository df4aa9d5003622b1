"""Preference training (train/align.py, train/prefs.py, methods/dpo|orpo|simpo|kto): the objectives' arithmetic,
the tokens they score, the reference model, and each method end to end on the tiny model."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from xuetu.data.record import Record
from xuetu.errors import XuetuError
from xuetu.train import args as targs
from xuetu.train import methods
from xuetu.train.align import _reference
from xuetu.train.finetune import finetune, load_tokenizer
from xuetu.train.prefs import Logps, build_pref_examples, collate_prefs, sequence_logps

PAIRS = [{"prompt": f"Question {i}: is the sky green?", "chosen": f"No, the sky is blue ({i}).",
          "rejected": f"Yes, the sky is green and the grass is purple ({i})."} for i in range(12)]


def pairs_file(path, rows=PAIRS):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def quick(tmp_path, method, **kw) -> targs.TrainArgs:
    base = dict(model="tiny", data=pairs_file(tmp_path / "pairs.jsonl"), method=method, epochs=2, batch_size=2,
                lr=5e-3, evaluate=False, save_every=2, min_steps=0, val_fraction=0.2)
    return targs.TrainArgs(**{**base, **kw})


def logps(chosen_sum, rejected_sum, chosen_mean=None, rejected_mean=None) -> Logps:
    s = torch.tensor([*chosen_sum, *rejected_sum])
    m = torch.tensor([*(chosen_mean or chosen_sum), *(rejected_mean or rejected_sum)])
    return Logps(s, m, torch.ones_like(s))


# -- the objectives ----------------------------------------------------------------------------------


def test_dpo_is_the_papers_formula():
    a = targs.AlignArgs(beta=0.1)
    policy, ref = logps([-10.0, -20.0], [-30.0, -5.0]), logps([-12.0, -20.0], [-25.0, -6.0])
    loss, m = methods.get("dpo").loss(policy, ref, None, a)
    logits = 0.1 * torch.tensor([(-10 + 12) - (-30 + 25), (-20 + 20) - (-5 + 6)])
    assert loss.item() == pytest.approx(float(-F.logsigmoid(logits).mean()))
    assert m["reward_chosen"] == pytest.approx(0.1)  # (0.2 + 0) / 2
    assert m["margin"] == pytest.approx(float(logits.mean()))
    assert m["accuracy"] == 0.5  # the first pair's chosen reward is the higher one, the second's is not
    same, _ = methods.get("dpo").loss(ref, ref, None, a)
    assert same.item() == pytest.approx(math.log(2))  # the reference itself: no preference yet


def test_simpo_and_orpo_need_no_reference_and_use_mean_log_probs():
    a = targs.AlignArgs(beta=2.0, gamma=0.5)
    policy = logps([-40.0], [-10.0], chosen_mean=[-1.0], rejected_mean=[-2.0])  # long chosen, short rejected
    loss, m = methods.get("simpo").loss(policy, None, None, a)
    assert loss.item() == pytest.approx(float(-F.logsigmoid(torch.tensor(2.0 * (-1 + 2) - 0.5))))
    assert m["accuracy"] == 1.0  # by mean per token, not by sum
    o = targs.AlignArgs(beta=0.1)
    loss, m = methods.get("orpo").loss(policy, None, None, o)
    odds = lambda lp: lp - math.log1p(-math.exp(lp))  # noqa: E731
    assert loss.item() == pytest.approx(1.0 - 0.1 * math.log(1 / (1 + math.exp(-(odds(-1.0) - odds(-2.0))))))
    assert not methods.get("simpo").REFERENCE and not methods.get("orpo").REFERENCE


def test_kto_pushes_desirable_up_and_undesirable_down():
    a = targs.AlignArgs(beta=0.1)
    # rows: [own answer x2, partner answer x2]; desirable first, undesirable second
    policy, ref = logps([-5.0, -5.0], [-8.0, -8.0]), logps([-6.0, -4.0], [-8.0, -8.0])
    desirable = torch.tensor([True, False])
    loss, m = methods.get("kto").loss(policy, ref, desirable, a)
    expected = ((1 - torch.sigmoid(torch.tensor(0.1 * (1.0 - 0)))) + (1 - torch.sigmoid(torch.tensor(0.1 * (0 + 1.0))))) / 2
    assert loss.item() == pytest.approx(float(expected))
    assert m["kl"] == 0.0 and m["accuracy"] == 1.0 and m["margin"] == pytest.approx(0.2)
    # A batch of desirable answers only measures no rejected reward and no margin: left out, never NaN.
    _, m = methods.get("kto").loss(policy, ref, torch.tensor([True, True]), a)
    assert "margin" not in m and "reward_rejected" not in m
    assert not any(math.isnan(v) for v in m.values())


# -- what is scored ----------------------------------------------------------------------------------


def test_only_the_last_answer_is_scored(tiny_dir):
    tok = load_tokenizer(tiny_dir)
    r = Record(messages=[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "first answer"},
                         {"role": "user", "content": "and?"}, {"role": "assistant", "content": "chosen"}],
               rejected={"role": "assistant", "content": "the rejected one"})
    (ex,), report = build_pref_examples([r], tok, 512, paired=True)
    scored = lambda ids, labels: tok.decode([t for t, lab in zip(ids, labels) if lab != -100])  # noqa: E731
    assert scored(ex.ids, ex.labels).startswith("chosen") and "first" not in scored(ex.ids, ex.labels)
    assert scored(ex.rejected_ids, ex.rejected_labels).startswith("the rejected one")
    assert report.pairs == 1
    batch = collate_prefs([ex, ex], tok.pad_token_id)
    assert batch["input_ids"].shape[0] == 4 and (batch["attention_mask"].sum(1)[:2] == len(ex.ids)).all()


def test_pairs_and_labels_are_checked(tiny_dir):
    tok = load_tokenizer(tiny_dir)
    same = Record(messages=[{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
                  rejected={"role": "assistant", "content": " a "})
    kept, report = build_pref_examples([same], tok, 512, paired=True)
    assert kept == [] and report.dropped_same == 1
    labelled = Record(messages=same.messages, label=False)
    with pytest.raises(XuetuError, match="needs chosen/rejected pairs"):
        build_pref_examples([labelled], tok, 512, paired=True)
    kto, report = build_pref_examples([same, labelled], tok, 512, paired=False)  # a pair gives one of each kind
    assert [ex.label for ex in kto] == [True, False, False] and report.desirable == 1


def test_the_reference_is_the_base_under_a_switched_off_adapter(tiny_dir):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    tok = load_tokenizer(tiny_dir)
    (ex,), _ = build_pref_examples([Record(messages=[{"role": "user", "content": "q"},
                                                     {"role": "assistant", "content": "yes"}],
                                           rejected={"role": "assistant", "content": "no"})], tok, 512, True)
    batch = collate_prefs([ex], tok.pad_token_id)
    base = AutoModelForCausalLM.from_pretrained(tiny_dir)
    with torch.no_grad():
        expected = sequence_logps(base, **batch).sum
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_dir), LoraConfig(r=4, target_modules="all-linear"))
    for name, p in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.5)  # a trained adapter changes the answer's log-probability
    with torch.no_grad():
        assert not torch.allclose(sequence_logps(model, **batch).sum, expected, atol=1e-4)
        with _reference(model):
            assert torch.allclose(sequence_logps(model, **batch).sum, expected, atol=1e-5)


# -- end to end on the tiny model ---------------------------------------------------------------------


@pytest.mark.parametrize("method", ["dpo", "orpo", "simpo", "kto"])
def test_each_objective_trains_and_saves(tmp_path, tiny, method):
    result = finetune(quick(tmp_path, method), progress=False)
    info = json.loads((result.run / "run.json").read_text())
    metrics = [json.loads(line) for line in (result.run / "metrics.jsonl").read_text().splitlines()]
    assert info["kind"] == "align" and info["status"] == "finished" and info["method"] == method
    assert {"loss", "reward_chosen", "reward_rejected", "margin", "accuracy"} <= set(metrics[-1])
    assert metrics[-1]["margin"] > metrics[0]["margin"]  # the chosen answers pull ahead
    assert (result.run / "curves.png").stat().st_size > 10_000
    assert (result.run / "reference_logps.pt").exists()
    if method != "kto":
        assert info["tuned_preference_accuracy"] >= info["base_preference_accuracy"]
    from xuetu import models

    assert models.resolve(result.model).adapter_dir is not None


def test_full_weights_and_resume_reuse_the_cached_reference(tmp_path, tiny):
    args = quick(tmp_path, "dpo", align=targs.AlignArgs(weights="full"), lr=1e-3, max_steps=4, save_every=2)
    assert args.align.beta == 0.1
    first = finetune(args, progress=False)
    from xuetu import models
    from xuetu.models import store

    assert models.resolve(first.model).adapter_dir is None  # a whole new model
    cached = first.run / "reference_logps.pt"
    stamp = cached.stat().st_mtime_ns
    store.remove(first.model)
    (first.run / "run.json").write_text(json.dumps({**json.loads((first.run / "run.json").read_text()),
                                                    "status": "running"}))
    again = finetune(args, progress=False)  # resumes from the last checkpoint, with the same reference
    assert again.steps == 4 and cached.stat().st_mtime_ns == stamp


def test_wrong_data_says_what_to_do(tmp_path, tiny):
    sft = tmp_path / "sft.jsonl"
    sft.write_text(json.dumps({"question": "q", "answer": "a"}) + "\n", encoding="utf-8")
    with pytest.raises(XuetuError, match="not preference data") as e:
        finetune(quick(tmp_path, "dpo", data=str(sft)), progress=False)
    assert "xuetu data pairs" in e.value.hint
    kto = pairs_file(tmp_path / "kto.jsonl", [{"prompt": "q", "completion": "a", "label": True}] * 4)
    with pytest.raises(XuetuError, match="needs chosen/rejected pairs"):
        finetune(quick(tmp_path, "orpo", data=kto), progress=False)
    with pytest.raises(XuetuError, match="align.weights must be one of"):
        targs.load(targs.TrainArgs, None, ["method=dpo", "align.weights=prompt-tuning"])


# -- GRPO ------------------------------------------------------------------------------------------


def test_grpo_advantages_are_within_each_group():
    from xuetu.train.grpo import advantages

    adv = advantages(torch.tensor([1.0, 0.0, 1.0, 0.0, 2.0, 2.0, 2.0, 2.0]), group=4)
    assert adv[:4].tolist() == pytest.approx([0.866, -0.866, 0.866, -0.866], abs=1e-3)
    assert adv[4:].tolist() == [0.0] * 4  # a group that all scored the same teaches nothing


def test_grpo_trains_on_rewards_end_to_end(tmp_path, tiny):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"Say something about {i}.", "reference": str(i)}) + "\n"
                               for i in range(6)), encoding="utf-8")
    args = quick(tmp_path, "grpo", data=str(prompts), max_steps=3, lr=1e-3,
                 align=targs.AlignArgs(rewards=["length:4", "0.5*exact"], group=3, max_new_tokens=8))
    assert args.align.beta == 0.04
    result = finetune(args, progress=False)
    metrics = [json.loads(line) for line in (result.run / "metrics.jsonl").read_text().splitlines()]
    assert len(metrics) == 3 and {"reward", "kl", "reward_length:4", "reward_exact"} <= set(metrics[-1])
    assert metrics[0]["kl"] == pytest.approx(0.0, abs=1e-6)  # the first samples come from the reference itself
    assert (result.run / "curves.png").exists()
    with pytest.raises(XuetuError, match="needs rewards"):
        targs.TrainArgs(method="grpo", data="x")
    with pytest.raises(XuetuError, match="rewards are|unknown reward|Rewards are"):
        finetune(quick(tmp_path, "grpo", data=str(prompts), align=targs.AlignArgs(rewards=["shiny"])), progress=False)
