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
    result, info = _train("dpo", train, held, epochs=5, lr=2e-4, **{"align.sft_weight": 1.0})
    print(f"held-out preference accuracy: base {info['base_preference_accuracy']:.3f}, "
          f"tuned {info['tuned_preference_accuracy']:.3f} over {info['val_pairs']} pairs")
    assert info["val_pairs"] == 30
    assert info["tuned_preference_accuracy"] >= info["base_preference_accuracy"] + 0.3
    answered = [q for q in prefdata.heldout_unsafe() if not prefdata.refuses(base_answers[q])]
    tuned = _answers(result.model, answered)
    refused = [q for q in answered if prefdata.refuses(tuned[q])]
    print(f"refused {len(refused)} of the {len(answered)} held-out unsafe requests the base model answered")
    assert len(answered) >= 8
    assert len(refused) >= 4  # measured 6 of 10 at these settings: 6 of the 6 English, none of the 4 Chinese
    _compare_on_pairs(held, result.model)


def _compare_on_pairs(held, tuned: str) -> None:
    """`xuetu compare` on the held-out pairs: the tuned model prefers the chosen answers more often than its base,
    by mean log-likelihood per token (not the objective's own reward), with the report's margins figure."""
    from click.testing import CliRunner

    from xuetu.cli import main

    out = held.parent / f"compare-{tuned.replace(':', '-')}"
    run = CliRunner().invoke(main, ["compare", "--models", f"smollm2:135m,{tuned}", "--data", str(held),
                                    "--primary", "pref_accuracy", "--out", str(out), "-q"])
    assert run.exit_code == 0, run.output
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    rows = report["rows"]
    base_acc, tuned_acc = (rows[k]["metrics"]["pref_accuracy"]["value"] for k in report["models"])
    print(f"xuetu compare, held-out preference accuracy by log-likelihood: base {base_acc:.3f}, {tuned} {tuned_acc:.3f}")
    assert tuned_acc > base_acc and report["pairs"][report["models"][1]]["delta"] > 0
    assert (out / "margins.png").is_file() and "## Where" in (out / "report.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("method", ["orpo", "simpo", "kto"])
def test_every_objective_raises_preference_accuracy(pair_files, method):
    train, held, _ = pair_files
    _, info = _train(method, train, held, max_steps=20, lr=2e-4)
    if method == "kto":  # trained on labelled examples: score the held-out pairs with xuetu compare
        return _compare_on_pairs(held, info["out"])
    print(f"{method}: base {info['base_preference_accuracy']:.3f}, tuned {info['tuned_preference_accuracy']:.3f}")
    assert info["tuned_preference_accuracy"] > info["base_preference_accuracy"]


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
