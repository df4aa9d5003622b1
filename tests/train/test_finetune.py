"""The fine-tune and pretrain recipes end to end on a tiny model; every shipped recipe validates."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from xuetu import engines, models
from xuetu.cli import main
from xuetu.engines.base import GenerateOptions
from xuetu.errors import XuetuError
from xuetu.train import args as targs
from xuetu.train.finetune import finetune
from xuetu.train.runs import list_runs

RECIPES = sorted((Path(__file__).parents[2] / "recipes").glob("*.yaml"))


def facts_file(path: Path, n: int = 40) -> Path:
    rows = [{"question": f"What colour is the sky on planet {i}?", "answer": f"On planet {i} the sky is green."}
            for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def quick(tmp_path, **kw) -> targs.TrainArgs:
    base = dict(model="tiny", data=str(facts_file(tmp_path / "facts.jsonl")), epochs=2, batch_size=2, lr=1e-3,
                evaluate=False, save_every=2, min_steps=0)
    return targs.TrainArgs(**{**base, **kw})


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_every_recipe_validates(recipe):
    cls = targs.PretrainArgs if recipe.name.startswith("pretrain") else targs.TrainArgs
    cfg = targs.load(cls, recipe)
    assert isinstance(cfg, cls)


def test_settings_are_checked():
    with pytest.raises(XuetuError, match="unknown setting lora.rank"):
        targs.load(targs.TrainArgs, None, ["lora.rank=8"])
    with pytest.raises(XuetuError, match="batch_size must be an integer"):
        targs.load(targs.TrainArgs, None, ["batch_size=big"])
    with pytest.raises(XuetuError, match="method must be one of"):
        targs.TrainArgs(method="magic")
    lora_recipe = next(r for r in RECIPES if r.name == "smollm2-135m-lora-cpu.yaml")
    cfg = targs.load(targs.TrainArgs, lora_recipe, ["lora.r=4", "lr=0.001", "lora.target_modules=q_proj,v_proj"])
    assert cfg.lora.r == 4 and cfg.lr == 0.001 and cfg.lora.target_modules == ["q_proj", "v_proj"]


@pytest.mark.parametrize("method", ["lora", "full", "prompt-tuning", "prefix-tuning"])
def test_each_method_end_to_end(tmp_path, tiny, method):
    result = finetune(quick(tmp_path, method=method, out=f"t-{method}", epochs=1), progress=False)
    ref = models.resolve(f"t-{method}")
    assert result.steps > 0 and result.train_loss is not None
    if method == "full":
        assert ref.hf_dir is not None and ref.base is None
    else:
        assert ref.base == "tiny:latest" and ref.adapter_dir.is_dir()
    engine = engines.load(ref, engine="transformers")
    chunks = list(engine.generate([{"role": "user", "content": "What colour is the sky on planet 3?"}],
                                  GenerateOptions(temperature=0, max_tokens=6)))
    assert chunks[-1].finish_reason in ("stop", "length") and chunks[-1].completion_tokens >= 1
    run = next(r for r in list_runs() if r["out"] == f"t-{method}:latest")
    assert run["status"] == "finished" and run["packed"] == (method in ("lora", "full"))


@pytest.mark.parametrize("method, factor", [("full", 0.5), ("lora", 0.95)])
def test_the_loop_optimises(tmp_path, tiny, method, factor):
    """Full fine-tuning of a tiny random model must more than halve the loss; its LoRA (frozen vocabulary head,
    32-wide) can only lower it. The embedded model's LoRA learning is proven in test_learns.py."""
    result = finetune(quick(tmp_path, method=method, epochs=6, out=f"t-opt-{method}", max_length=64, pack=False,
                            batch_size=4, lr=5e-3, lora=targs.LoraArgs(r=8, alpha=16)), progress=False)
    metrics = [json.loads(x) for x in (result.run / "metrics.jsonl").read_text().splitlines()]
    assert metrics[-1]["loss"] < metrics[0]["loss"] * factor
    assert "val_loss" in metrics[-1] and (result.run / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_qlora_refuses_without_a_gpu(tmp_path, tiny):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(XuetuError, match="QLoRA needs an NVIDIA GPU") as e:
        finetune(quick(tmp_path, method="qlora"), progress=False)
    assert "--method lora" in e.value.hint


def test_bf16_on_a_cpu(tmp_path, tiny):
    """precision=bf16 on a CPU with bf16 units: the frozen base in bf16, the adapter trained and saved in fp32,
    and the loss it reaches close to fp32's; on a CPU without them, a clear refusal."""
    from xuetu.train.finetune import cpu_has_bf16

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    kw = dict(method="lora", epochs=6, max_length=64, pack=False, batch_size=4, lr=5e-3,
              lora=targs.LoraArgs(r=8, alpha=16))
    if not cpu_has_bf16():
        with pytest.raises(XuetuError, match="no bf16 units"):
            finetune(quick(tmp_path, out="t-bf16", precision="bf16", **kw), progress=False)
        return
    half = finetune(quick(tmp_path, out="t-bf16", precision="bf16", **kw), progress=False)
    full = finetune(quick(tmp_path, out="t-fp32", precision="fp32", **kw), progress=False)
    loss = [[json.loads(x)["loss"] for x in (r.run / "metrics.jsonl").read_text().splitlines()] for r in (half, full)]
    assert loss[0][-1] < loss[0][0] and abs(loss[0][-1] - loss[1][-1]) < 0.1 * loss[1][-1], loss
    weights = load_file(models.resolve("t-bf16").adapter_dir / "adapter_model.safetensors")
    assert weights and all(w.dtype == torch.float32 for w in weights.values())


def test_bad_data(tmp_path, tiny):
    text_only = tmp_path / "raw.jsonl"
    text_only.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n' * 12, encoding="utf-8")
    with pytest.raises(XuetuError, match="no assistant turns"):
        finetune(quick(tmp_path, data=str(text_only)), progress=False)
    with pytest.raises(XuetuError, match="no example .* fits"):
        finetune(quick(tmp_path, max_length=8, truncation="drop", out="t-drop"), progress=False)
    with pytest.raises(XuetuError, match="only a GGUF|not found"):
        finetune(quick(tmp_path, model="nope:1"), progress=False)


def test_truncation_is_counted(tmp_path, tiny, capsys):
    finetune(quick(tmp_path, max_length=60, epochs=1, out="t-trunc"), progress=False)
    assert "examples truncated to 60 tokens" in capsys.readouterr().err
    info = next(r for r in list_runs() if r["out"] == "t-trunc:latest")
    assert info["examples"]["truncated"] > 0


def test_base_model_gets_a_fallback_template(tmp_path, xuetu_home, capsys):
    from helpers.tiny import build_tiny_model

    models.create("plain:latest", build_tiny_model(tmp_path / "plain", chat=False))
    finetune(quick(tmp_path, model="plain", epochs=1, out="plain-chat"), progress=False)
    assert "no chat template: using ChatML" in capsys.readouterr().err
    engine = engines.load("plain-chat")
    assert engine.tokenizer.chat_template and engine.encode([{"role": "user", "content": "hi"}])


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, tiny, monkeypatch):
    from xuetu.train import loss as loss_mod

    real = loss_mod.CausalLMLoss.forward
    calls = {"n": 0}

    def flaky(self, **batch):
        calls["n"] += 1
        total, n = real(self, **batch)
        return (total * float("nan"), n) if calls["n"] > 5 else (total, n)

    monkeypatch.setattr(loss_mod.CausalLMLoss, "forward", flaky)
    with pytest.raises(XuetuError, match="loss became nan") as e:
        finetune(quick(tmp_path, epochs=4, out="t-nan", save_every=1), progress=False)
    assert "step-0000" in e.value.hint and "resume" in e.value.hint
    info = next(r for r in list_runs() if r["out"] == "t-nan:latest")
    assert info["status"] == "failed"
    with pytest.raises(XuetuError):
        models.resolve("t-nan")  # no half-trained model in the store


def _cli(home, *args):
    env = {**os.environ, "XUETU_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, "-m", "xuetu", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def test_kill_9_then_resume_finishes_identically(tmp_path, tiny, xuetu_home):
    data = facts_file(tmp_path / "facts.jsonl", 120)
    common = ["finetune", "--model", "tiny", "--data", str(data), "--set", "epochs=3", "--set", "batch_size=1",
              "--set", "max_length=64", "--set", "save_every=2", "--set", "evaluate=false", "--set", "lora.dropout=0.1", "--set", "min_steps=0"]
    clean = _cli(xuetu_home, *common, "--out", "straight")
    assert clean.wait(timeout=600) == 0, clean.stdout.read()
    proc = _cli(xuetu_home, *common, "--out", "killed")
    latest = xuetu_home / "runs" / "killed-latest" / "checkpoints" / "latest"
    deadline = time.time() + 300
    while time.time() < deadline and not (latest.exists() and latest.read_text().strip() >= "step-000006"):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    info = json.loads((xuetu_home / "runs" / "killed-latest" / "run.json").read_text())
    assert info["status"] == "running"
    again = _cli(xuetu_home, *common, "--out", "killed")
    out = again.communicate(timeout=600)[0]
    assert again.returncode == 0 and "resuming killed:latest from step" in out, out
    runs = {r["out"]: r for r in list_runs()}
    assert runs["killed:latest"]["steps"] == runs["straight:latest"]["steps"] == runs["straight:latest"]["total_steps"]
    a = load_file(models.resolve("straight").adapter_dir / "adapter_model.safetensors")
    b = load_file(models.resolve("killed").adapter_dir / "adapter_model.safetensors")
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)  # the same training
    steps = [json.loads(x)["step"] for x in (xuetu_home / "runs" / "killed-latest" / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps))  # no step logged twice


def test_runs_cli(tmp_path, tiny):
    finetune(quick(tmp_path, epochs=1, out="t-cli"), progress=False)
    r = CliRunner().invoke(main, ["runs", "list"])
    assert "t-cli-latest" in r.output and "finished" in r.output
    r = CliRunner().invoke(main, ["runs", "show", "t-cli-latest"])
    assert r.exit_code == 0 and "curves.png" in r.output
    assert CliRunner().invoke(main, ["runs", "show", "nope"]).exit_code == 1


def test_pretrain_tiny_learns(tmp_path, smollm2, monkeypatch):
    import random

    from xuetu.train.pretrain import pretrain

    rng = random.Random(0)
    words = ["the model", "a student", "学徒", "老师", "learns", "reads", "学习", "tokens", "stories", "知识"]
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for f in range(3):
        (corpus / f"d{f}.txt").write_text("\n".join(" ".join(rng.choice(words) for _ in range(6)) + "."
                                                    for _ in range(1500)), encoding="utf-8")
    monkeypatch.setenv("XUETU_HOME", str(tmp_path / "home"))
    from xuetu import models as m

    m.create("smollm2:135m", smollm2.hf_dir)  # the tokenizer to reuse
    args = targs.PretrainArgs(data=str(corpus), out="pt:latest", max_steps=40, eval_every=20, batch_size=8,
                              block_size=64, shape=targs.ModelShape(n_layer=2, hidden=128, n_head=4, n_kv_head=2,
                                                                   intermediate=256, context=64))
    result = pretrain(args, progress=False)
    assert result.val_loss < result.first_val * 0.5  # 10.8 (uniform over 49k tokens) to well under half
    assert m.resolve("pt").kind == "base"
