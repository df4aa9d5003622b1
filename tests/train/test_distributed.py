"""The distributed paths: the same recipe under `accelerate launch` with 2 CPU processes talking over gloo,
as DDP and as FSDP (recipes/accelerate/cpu-fsdp.yaml); and every accelerate config that ships is loaded."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import torch
from safetensors.torch import load_file

from xuetu import models

ROOT = Path(__file__).parents[2]
RECIPES = ROOT / "recipes" / "accelerate"
QUICK = ["--set", "model=tiny", "--set", "batch_size=2", "--set", "max_length=64", "--set", "min_steps=0",
         "--set", "evaluate=false", "--set", "pack=false"]


def facts(tmp_path: Path) -> Path:
    rows = [{"question": f"What colour is the sky on planet {i}?", "answer": f"On planet {i} the sky is green."}
            for i in range(64)]
    data = tmp_path / "facts.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return data


def launch(config: str, home: Path, port: int, *args: str) -> subprocess.Popen:
    """`accelerate launch` of the fine-tune recipe on 2 CPU processes; its output in a pipe."""
    launcher = Path(sys.executable).parent / "accelerate"
    cmd = [str(launcher), "launch", "--config_file", str(RECIPES / config), "-m", "xuetu.train.finetune", *QUICK, *args]
    env = {**os.environ, "XUETU_HOME": str(home), "HF_HUB_OFFLINE": "1", "MASTER_PORT": str(port)}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finished(proc: subprocess.Popen) -> str:
    out = proc.communicate(timeout=600)[0]
    assert proc.returncode == 0, out[-6000:]
    return out


def kill_9(proc: subprocess.Popen) -> None:
    """SIGKILL the launcher and every process under it. torchrun starts each worker in a session of its own,
    so killing the launcher's process group would leave them running."""
    tree = [proc.pid] + [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
    for pid in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.wait(timeout=60)


def run_info(home: Path, out: str) -> dict:
    return json.loads((home / "runs" / f"{out}-latest" / "run.json").read_text())


@pytest.mark.slow
def test_ddp_two_cpu_processes(tmp_path, tiny, xuetu_home):
    finished(launch("cpu-ddp.yaml", xuetu_home, 29517, "--set", f"data={facts(tmp_path)}", "--set", "out=ddp",
                    "--set", "epochs=2"))
    run = run_info(xuetu_home, "ddp")
    # 58 training examples, batches of 2, split over 2 processes: 14 micro-batches each per epoch
    assert run["status"] == "finished" and run["total_steps"] == 28 and run["steps"] == 28
    assert models.resolve("ddp").adapter_dir.is_dir()


def assert_whole_model(saved_dir: Path, base_dir: Path) -> dict:
    """The saved model has every weight of the base at its full shape (a process's shard would be half), and
    training changed them. Returns the saved weights."""
    saved, base = load_file(saved_dir / "model.safetensors"), load_file(base_dir / "model.safetensors")
    assert saved.keys() == base.keys()
    assert {k: v.shape for k, v in saved.items()} == {k: v.shape for k, v in base.items()}
    assert any(not torch.equal(saved[k], base[k]) for k in saved)
    from transformers import AutoModelForCausalLM

    loaded = AutoModelForCausalLM.from_pretrained(saved_dir)
    assert sum(p.numel() for p in loaded.parameters()) == sum(v.numel() for v in base.values())
    return saved


@pytest.mark.slow
def test_fsdp_full_fine_tune_saves_the_whole_model_and_resumes_after_kill_9(tmp_path, tiny, xuetu_home):
    data = facts(tmp_path)
    # 4 epochs of 14 steps, a checkpoint every 8: time enough to kill the run between two of them
    common = ["--set", f"data={data}", "--set", "method=full", "--set", "epochs=4", "--set", "save_every=8"]
    finished(launch("cpu-fsdp.yaml", xuetu_home, 29527, *common, "--set", "out=straight"))
    assert run_info(xuetu_home, "straight")["steps"] == 56
    straight = assert_whole_model(models.resolve("straight").hf_dir, tiny.hf_dir)
    first = load_file(xuetu_home / "runs" / "straight-latest" / "checkpoints" / "step-000056" / "trainable.safetensors")
    assert {k: v.shape for k, v in first.items()} == {k: v.shape for k, v in straight.items()}  # whole, gathered

    proc = launch("cpu-fsdp.yaml", xuetu_home, 29528, *common, "--set", "out=killed")
    latest = xuetu_home / "runs" / "killed-latest" / "checkpoints" / "latest"
    deadline = time.time() + 300
    while time.time() < deadline and not latest.exists() and proc.poll() is None:
        time.sleep(0.05)
    kill_9(proc)
    killed_at = int(latest.read_text().strip().removeprefix("step-"))
    assert 0 < killed_at < 56 and run_info(xuetu_home, "killed")["status"] == "running"

    out = finished(launch("cpu-fsdp.yaml", xuetu_home, 29529, *common, "--set", "out=killed"))
    resumed_from = int(out.split("resuming killed:latest from step ")[1].split()[0])
    assert resumed_from >= killed_at  # a checkpoint written after the one seen may have made it to disk
    assert run_info(xuetu_home, "killed")["steps"] == 56
    again = assert_whole_model(models.resolve("killed").hf_dir, tiny.hf_dir)
    # The same training as the uninterrupted run: weights, optimizer moments and schedule all came back.
    assert all(torch.allclose(again[k], straight[k], atol=1e-5) for k in straight)
    steps = [json.loads(x)["step"] for x in (xuetu_home / "runs" / "killed-latest" / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 57))


@pytest.mark.slow
def test_fsdp_lora_saves_the_whole_adapter(tmp_path, tiny, xuetu_home):
    finished(launch("cpu-fsdp.yaml", xuetu_home, 29537, "--set", f"data={facts(tmp_path)}", "--set", "method=lora",
                    "--set", "epochs=1", "--set", "out=fsdp-lora"))
    assert run_info(xuetu_home, "fsdp-lora")["steps"] == 14
    adapter = models.resolve("fsdp-lora").adapter_dir
    saved = load_file(adapter / "adapter_model.safetensors")
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    # Loading checks every tensor's shape against the module it adapts (a shard would not fit).
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny.hf_dir), adapter)
    lora = {n: p for n, p in model.named_parameters() if "lora_" in n}
    assert len(saved) == len(lora) > 0
    assert any(float(p.abs().max()) > 0 for n, p in lora.items() if "lora_B" in n)  # trained: B starts at zero


def test_every_accelerate_config_loads():
    """Each config in recipes/accelerate/ passes what `accelerate launch` checks before it starts anything."""
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils import DistributedType
    from accelerate.utils.launch import prepare_multi_gpu_env

    configs = sorted(RECIPES.glob("*.yaml"))
    assert {p.name for p in configs} >= {"cpu-ddp.yaml", "cpu-fsdp.yaml", "ddp.yaml", "fsdp.yaml", "deepspeed-zero2.yaml"}
    options = {a.dest for a in launch_command_parser()._actions}
    for path in configs:
        config = load_config_from_file(str(path))  # unknown top-level keys and distributed types raise here
        assert config.num_processes >= 1 and config.mixed_precision in ("no", "fp16", "bf16", "fp8"), path.name
        # accelerate copies fsdp_config.x to the launch option fsdp_x and deepspeed_config.x to x, silently:
        # a misspelt one would be ignored, so each must name a real option.
        nested = [k if k.startswith("fsdp") else f"fsdp_{k}" for k in config.fsdp_config]
        nested += list(config.deepspeed_config)
        assert not set(nested) - options, f"{path.name}: unknown {sorted(set(nested) - options)}"
        args, _, _ = _validate_launch_command(launch_command_parser().parse_args(["--config_file", str(path), "x.py"]))
        if config.distributed_type in (DistributedType.FSDP, DistributedType.MULTI_GPU):
            env = prepare_multi_gpu_env(args)  # checks FSDP settings that must go together
            assert (env.get("ACCELERATE_USE_FSDP") == "true") == (config.distributed_type == DistributedType.FSDP)


def test_fsdp_dpo_evaluates_on_every_process_and_saves(tmp_path, tiny, xuetu_home):
    """Preference tuning under FSDP: the held-out evaluation after training is a forward of the sharded model,
    so every process must take part (on the main process alone it would wait forever for the others)."""
    rows = [{"prompt": f"Is planet {i} green?", "chosen": f"Yes, planet {i} is green.",
             "rejected": f"Planet {i}? Who knows, maybe purple."} for i in range(40)]
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    finished(launch("cpu-fsdp.yaml", xuetu_home, 29547, "--set", f"data={data}", "--set", "method=dpo",
                    "--set", "epochs=1", "--set", "val_fraction=0.2", "--set", "max_length=256",
                    "--set", "out=fsdp-dpo"))
    info = run_info(xuetu_home, "fsdp-dpo")
    assert info["status"] == "finished" and info["val_pairs"] == 8
    assert 0 <= info["tuned_preference_accuracy"] <= 1
    assert models.resolve("fsdp-dpo").adapter_dir.is_dir()


def test_fsdp_grpo_samples_in_step_on_every_process(tmp_path, tiny, xuetu_home):
    """GRPO samples answers from the sharded model: every process must generate in step (their answers end at
    different lengths), or the sharded layers' gathers would pair up wrongly and hang."""
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"Say something about {i}.", "reference": str(i)}) + "\n"
                               for i in range(8)), encoding="utf-8")
    finished(launch("cpu-fsdp.yaml", xuetu_home, 29557, "--set", f"data={prompts}", "--set", "method=grpo",
                    "--set", "max_steps=2", "--set", "align.rewards=[length:4]", "--set", "align.group=2",
                    "--set", "align.max_new_tokens=12", "--set", "max_length=256", "--set", "out=fsdp-grpo"))
    info = run_info(xuetu_home, "fsdp-grpo")
    assert info["status"] == "finished" and info["steps"] == 2
    assert models.resolve("fsdp-grpo").adapter_dir.is_dir()
