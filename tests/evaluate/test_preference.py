"""Preference accuracy on the real embedded model: fluent chosen answers against junk are preferred, swapping
chosen and rejected flips every margin, the scored tokens are exactly the last answer's (checked against the
model's own loss), and KTO-labelled answers get their log-likelihoods apart."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from xuetu.errors import XuetuError
from xuetu.evaluate.run import EvalSpec, evaluate

FLUENT = [
    ("What is the capital of France?", "The capital of France is Paris."),
    ("How many days are in a week?", "There are seven days in a week."),
    ("What colour is the sky on a clear day?", "On a clear day the sky is blue."),
    ("What do bees make?", "Bees make honey."),
    ("What is two plus two?", "Two plus two is four."),
]
JUNK = ["qz xv7 plm# brr 0k ttz wq", "vvk ^^ 9gh zzq lorp xk ]]", "mnb qqq 77 jx fwl zr @@", "xq' zzt 4k4 ppw ~~ vb",
        "jjr 0o0 tqx %% wlk nn9"]
MULTI = {"messages": [{"role": "user", "content": "Hi! Can you help me with geography?"},
                      {"role": "assistant", "content": "Of course, ask away."},
                      {"role": "user", "content": "What is the largest ocean on Earth?"}],
         "chosen": "The Pacific Ocean is the largest ocean on Earth.", "rejected": "kk zq9 ^^ wvb xx trr"}


def write(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def pairs(tmp_path):
    rows = [{"prompt": q, "chosen": a, "rejected": j} for (q, a), j in zip(FLUENT, JUNK)]
    return write(tmp_path / "pairs.jsonl", rows + [MULTI])


def swapped(path, out):
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return write(out, [{**r, "chosen": r["rejected"], "rejected": r["chosen"]} for r in rows])


def test_fluent_answers_beat_junk_and_swapping_flips_every_margin(smollm2_home, pairs, tmp_path):
    from xuetu.evaluate.generate import Models

    with Models() as models:
        result = evaluate(EvalSpec(model="smollm2:135m", data=str(pairs)), models, progress=False)
        flipped = evaluate(EvalSpec(model="smollm2:135m", data=str(swapped(pairs, tmp_path / "swapped.jsonl"))),
                           models, progress=False)
    assert result["task"] == "preference" and result["n"] == 6 and set(result["metrics"]) == {"pref_accuracy",
                                                                                              "pref_margin"}
    acc, margin = result["metrics"]["pref_accuracy"], result["metrics"]["pref_margin"]
    assert acc["value"] == 1.0 and margin["low"] > 1.0  # junk is far less likely per token
    margins = [e["scores"]["pref_margin"] for e in result["examples"]]
    assert all(e["scores"]["pref_correct"] == 1.0 for e in result["examples"])
    assert margins == pytest.approx([e["chosen_loglik"] - e["rejected_loglik"] for e in result["examples"]])
    assert flipped["metrics"]["pref_accuracy"]["value"] == 0.0
    assert [e["scores"]["pref_margin"] for e in flipped["examples"]] == pytest.approx([-m for m in margins], abs=1e-4)
    again = evaluate(EvalSpec(model="smollm2:135m", data=str(pairs)), progress=False)
    assert [e["scores"]["pref_margin"] for e in again["examples"]] == margins  # from the cache


def _reference_loglik(model, tok, messages: list[dict]) -> float:
    """Mean log-likelihood of the last answer by the model's own loss, its span found by rendering the template."""
    import torch

    before = tok.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
    full = tok.apply_chat_template(messages, tokenize=False)
    prompt_ids = tok(before, add_special_tokens=False)["input_ids"]
    ids = tok(full, add_special_tokens=False)["input_ids"]
    assert ids[:len(prompt_ids)] == prompt_ids
    ids = torch.tensor([ids])  # the answer runs to the end, its end-of-turn included
    labels = ids.clone()
    labels[0, :len(prompt_ids)] = -100
    with torch.inference_mode():
        return -model(ids, labels=labels).loss.item()


def test_only_the_last_answer_is_scored_as_the_models_own_loss_scores_it(smollm2_home):
    from xuetu import engines
    from xuetu.data.record import Record
    from xuetu.evaluate.preference import answer_logliks, last_answer

    eng = engines.load("smollm2:135m", engine="transformers")
    msgs = MULTI["messages"] + [{"role": "assistant", "content": MULTI["chosen"]}]
    record = Record(messages=msgs)
    ids, start, end = last_answer(eng.tokenizer, record)
    answer = eng.tokenizer.decode(ids[start:end])
    assert answer.startswith(MULTI["chosen"]) and "Of course" not in answer  # the last turn alone
    one = Record(messages=msgs[-2:])
    got, counts = answer_logliks(eng.model, eng.tokenizer, [record, one], batch_size=2, progress=False)
    assert counts[0] == counts[1] == end - start
    assert got[0] == pytest.approx(_reference_loglik(eng.model, eng.tokenizer, msgs), abs=1e-4)
    assert got[1] == pytest.approx(_reference_loglik(eng.model, eng.tokenizer, msgs[-2:]), abs=1e-4)
    assert got[0] != pytest.approx(got[1], abs=1e-4)  # the earlier turns are context
    tiny, _ = answer_logliks(eng.model, eng.tokenizer, [record], max_length=end - start + 8, stride=4,
                             progress=False)  # sliding windows: less context, the same tokens scored
    assert tiny[0] < 0 and tiny[0] != pytest.approx(got[0], abs=1e-6)


def test_kto_labels_get_their_log_likelihoods_apart_and_the_cli_reports_pairs(smollm2_home, pairs, tmp_path):
    from xuetu.cli import main

    rows = [{"prompt": q, "completion": a, "label": True} for q, a in FLUENT[:3]]
    rows += [{"prompt": q, "completion": j, "label": False} for (q, _), j in zip(FLUENT[3:], JUNK)]
    kto = evaluate(EvalSpec(model="smollm2:135m", data=str(write(tmp_path / "kto.jsonl", rows))), progress=False)
    m = kto["metrics"]
    assert kto["task"] == "kto" and m["desirable_loglik"]["n"] == 3 and m["undesirable_loglik"]["n"] == 2
    assert m["desirable_loglik"]["value"] > m["undesirable_loglik"]["high"] and m["kto_gap"]["value"] > 1.0
    out = CliRunner().invoke(main, ["eval", "smollm2:135m", "--data", str(pairs), "--out", str(tmp_path / "r"), "-q"])
    assert out.exit_code == 0, out.output
    assert "preference accuracy" in out.output and "1.000 [1.000, 1.000]" in out.output
    md = (tmp_path / "r" / "report.md").read_text(encoding="utf-8")
    assert "## Pairs" in md and "margins.png" in md and (tmp_path / "r" / "margins.png").is_file()
    assert json.loads((tmp_path / "r" / "report.json").read_text())["metrics"]["pref_accuracy"]["value"] == 1.0


def test_preference_metric_refuses_other_data_and_other_metrics(smollm2_home, pairs, tmp_path):
    qa = write(tmp_path / "qa.jsonl", [{"question": "Hi?", "answer": "Hello."}])
    with pytest.raises(XuetuError, match="is not preference data"):
        evaluate(EvalSpec(model="smollm2:135m", data=str(qa), metrics=["preference"]), progress=False)
    with pytest.raises(XuetuError, match="scored alone"):
        evaluate(EvalSpec(model="smollm2:135m", data=str(pairs), metrics=["pref", "rougeL"]), progress=False)
