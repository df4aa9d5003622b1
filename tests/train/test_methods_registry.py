"""The method registry is the only list of methods: one registered from outside xuetu (a module made here,
"head-only", which trains only the tiny model's vocabulary head) is a valid setting, a CLI choice, and
trains through the real fine-tune recipe into a model that loads."""

import json
import types

import pytest
import torch
from click.testing import CliRunner
from transformers import AutoModelForCausalLM

from xuetu import models
from xuetu.cli import main
from xuetu.errors import XuetuError
from xuetu.train import args as targs
from xuetu.train import methods
from xuetu.train.finetune import finetune


def head_only_method() -> types.ModuleType:
    """A whole new model in which only the output head (lm_head, untied in the tiny model) has trained."""
    method = types.ModuleType("head_only")
    method.ADAPTER = False
    method.PACKING = True
    method.PROMPT_LEARNING = False
    method.LR = 2e-2
    method.load = methods.load_plain

    def prepare(model, args, tokenizer):
        for p in model.parameters():
            p.requires_grad_(False)
        model.get_output_embeddings().weight.requires_grad_(True)
        return model

    method.prepare = prepare
    return method


@pytest.fixture
def head_only():
    methods.register("head-only", head_only_method())
    yield "head-only"
    methods.unregister("head-only")


def facts(path, n: int = 24):
    rows = [{"question": f"What colour is the sky on planet {i}?", "answer": f"On planet {i} the sky is green."}
            for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def test_a_registered_method_is_a_setting_and_a_choice(head_only):
    assert "head-only" in methods.names()
    args = targs.TrainArgs(method="head-only")
    assert args.lr == 2e-2  # the method's own default learning rate
    help_text = CliRunner().invoke(main, ["finetune", "--help"]).output
    assert "head-only" in help_text and "prefix-tuning" in help_text
    methods.unregister("head-only")
    with pytest.raises(XuetuError, match="method must be one of"):
        targs.TrainArgs(method="head-only")


def test_a_registered_method_trains_through_the_recipe(tmp_path, tiny, head_only):
    args = targs.TrainArgs(model="tiny", data=facts(tmp_path / "facts.jsonl"), method="head-only", out="head",
                           epochs=6, batch_size=4, max_length=64, pack=False, evaluate=False, min_steps=0)
    result = finetune(args, progress=False)
    metrics = [json.loads(x) for x in (result.run / "metrics.jsonl").read_text().splitlines()]
    assert result.steps == len(metrics) > 5
    assert metrics[-1]["loss"] < metrics[0]["loss"] * 0.95

    ref = models.resolve("head")
    assert ref.base is None and ref.hf_dir is not None  # not an adapter: a whole model
    before = AutoModelForCausalLM.from_pretrained(tiny.hf_dir, dtype=torch.float32).state_dict()
    after = AutoModelForCausalLM.from_pretrained(ref.hf_dir, dtype=torch.float32).state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"lm_head.weight"}


def test_the_cli_trains_with_a_registered_method(tmp_path, tiny, head_only):
    r = CliRunner().invoke(main, ["finetune", "--model", "tiny", "--data", facts(tmp_path / "f.jsonl"),
                                  "--method", "head-only", "--out", "head-cli", "--set", "max_steps=3",
                                  "--set", "evaluate=false", "--set", "batch_size=4"])
    assert r.exit_code == 0, r.output
    assert "trained head-cli:latest in 3 steps" in r.output
    assert models.resolve("head-cli").hf_dir is not None
    refused = CliRunner().invoke(main, ["finetune", "--model", "tiny", "--data", "x.jsonl", "--method", "magic"])
    assert refused.exit_code == 2 and "head-only" in refused.output  # click lists the registered methods
