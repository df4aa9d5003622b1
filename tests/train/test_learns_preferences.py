"""Issue 25's acceptance on the real embedded model: DPO on 60 pairs that teach three behaviours (refuse unsafe
requests politely; answer Chinese in Chinese; answer plain questions in one sentence) raises held-out preference
accuracy above the base model's, and the tuned model refuses held-out unsafe requests the base model answered.
ORPO, SimPO and KTO train on the same data and each raise it too.

The rejected answers are the base model's own greedy answers (tests/helpers/prefdata.py says why)."""

import json
import shutil

import pytest

from helpers import prefdata
from helpers.env import home_env

pytestmark = pytest.mark.slow


def _answers(name: str, prompts: list[str]) -> dict[str, str]:
    from xuetu import engines, models
    from xuetu.engines.base import GenerateOptions

    engine = engines.load(models.resolve(name))
    opts = GenerateOptions(temperature=0, max_tokens=48, seed=0)
    try:
        return {q: "".join(c.text for c in engine.generate([{"role": "user", "content": q}], opts)).strip()
                for q in prompts}
    finally:
        engine.close()


@pytest.fixture(scope="module")
def prefs_home(embedded_home, tmp_path_factory):
    """A store of this module's own with the embedded model (hard links), where the tuned models go."""
    from xuetu.models.store import link_or_copy

    root = tmp_path_factory.mktemp("prefs-home")
    shutil.copytree(embedded_home / "models", root / "models", copy_function=link_or_copy)
    return root


@pytest.fixture(scope="module")
def pair_files(prefs_home, tmp_path_factory):
    train, held = prefdata.train_pairs(), prefdata.heldout_pairs()
    with home_env(prefs_home):
        answers = _answers("smollm2:135m", prefdata.prompts(train + held))
    folder = tmp_path_factory.mktemp("prefs")
    return (prefdata.write(folder / "train.jsonl", prefdata.on_policy(train, answers)),
            prefdata.write(folder / "heldout.jsonl", prefdata.on_policy(held, answers)), answers)


@pytest.fixture(autouse=True)
def _in_prefs_home(prefs_home, monkeypatch):
    monkeypatch.setenv("XUETU_HOME", str(prefs_home))


def _train(method: str, train, held, **settings):
    from xuetu.train import args as targs
    from xuetu.train.finetune import finetune

    overrides = [f"{k}={v}" for k, v in settings.items()]
    args = targs.load(targs.TrainArgs, None, [f"method={method}", f"data={train}", f"val_data={held}",
                                              f"out=smollm2-{method}", "batch_size=4", *overrides])
    result = finetune(args, progress=False)
    return result, json.loads((result.run / "run.json").read_text())


def test_dpo_teaches_three_behaviours(pair_files):
    train, held, base_answers = pair_files
    result, info = _train("dpo", train, held, epochs=3, lr=2e-4, **{"align.sft_weight": 1.0})
    print(f"held-out preference accuracy: base {info['base_preference_accuracy']:.3f}, "
          f"tuned {info['tuned_preference_accuracy']:.3f} over {info['val_pairs']} pairs")
    assert info["val_pairs"] == 30
    assert info["tuned_preference_accuracy"] >= info["base_preference_accuracy"] + 0.3
    answered = [q for q in prefdata.heldout_unsafe() if not prefdata.refuses(base_answers[q])]
    tuned = _answers(result.model, answered)
    refused = [q for q in answered if prefdata.refuses(tuned[q])]
    print(f"refused {len(refused)} of the {len(answered)} held-out unsafe requests the base model answered")
    assert len(answered) >= 8
    assert len(refused) >= 3


@pytest.mark.parametrize("method", ["orpo", "simpo", "kto"])
def test_every_objective_raises_preference_accuracy(pair_files, method):
    train, held, _ = pair_files
    _, info = _train(method, train, held, max_steps=20, lr=2e-4)
    if method == "kto":  # trained on labelled examples: score the held-out pairs with the tuned model
        return _kto_check(held, info)
    print(f"{method}: base {info['base_preference_accuracy']:.3f}, tuned {info['tuned_preference_accuracy']:.3f}")
    assert info["tuned_preference_accuracy"] > info["base_preference_accuracy"]


def _kto_check(held, info) -> None:
    """KTO's run has labelled validation examples, not pairs: score the held-out pairs with the tuned model."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    import xuetu.data
    from xuetu import models
    from xuetu.train.finetune import load_tokenizer
    from xuetu.train.prefs import build_pref_examples, collate_prefs, sequence_logps

    records = list(xuetu.data.load(held))
    base_dir = models.resolve(info["base"]).hf_dir
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir),
                                      models.resolve(info["out"]).adapter_dir).eval()
    tok = load_tokenizer(base_dir)
    examples, _ = build_pref_examples(records, tok, 1024, paired=True)
    with torch.no_grad():
        tuned = sequence_logps(model, **collate_prefs(examples, tok.pad_token_id))
        with model.disable_adapter():
            base = sequence_logps(model, **collate_prefs(examples, tok.pad_token_id))
    acc = lambda lp: float((lp.halves()[0].mean > lp.halves()[1].mean).float().mean())  # noqa: E731
    print(f"kto: base {acc(base):.3f}, tuned {acc(tuned):.3f}")
    assert acc(tuned) > acc(base)


def test_grpo_raises_the_mean_reward_on_a_toy_task(tmp_path):
    """Answer a sum with the number inside <answer></answer>: rewarded for the format and for the right number."""
    import random

    rng = random.Random(0)
    rows = []
    for _ in range(48):
        a, b = rng.randint(1, 9), rng.randint(1, 9)
        rows.append({"prompt": f"What is {a} + {b}? Give only the number, inside <answer></answer>.",
                     "reference": str(a + b)})
    prompts = tmp_path / "sums.jsonl"
    prompts.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    from xuetu.train import args as targs
    from xuetu.train.finetune import finetune

    args = targs.load(targs.TrainArgs, None, [
        "method=grpo", f"data={prompts}", "out=smollm2-grpo", "batch_size=4", "max_steps=24", "lr=2e-4",
        r"align.rewards=regex:<answer>\s*\d+\s*</answer>;exact", "align.group=4", "align.max_new_tokens=24"])
    result = finetune(args, progress=False)
    rewards = [json.loads(line)["reward"] for line in (result.run / "metrics.jsonl").read_text().splitlines()]
    first, last = sum(rewards[:6]) / 6, sum(rewards[-6:]) / 6
    print(f"grpo mean reward: first 6 steps {first:.3f}, last 6 steps {last:.3f}")
    assert last > first
