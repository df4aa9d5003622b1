"""The DDP path: the same recipe under `accelerate launch` with 2 CPU processes talking over gloo."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from xuetu import models

pytestmark = pytest.mark.slow
ROOT = Path(__file__).parents[2]


def test_ddp_two_cpu_processes(tmp_path, tiny, xuetu_home):
    rows = [{"question": f"What colour is the sky on planet {i}?", "answer": f"On planet {i} the sky is green."}
            for i in range(64)]
    data = tmp_path / "facts.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    launcher = Path(sys.executable).parent / "accelerate"
    cmd = [str(launcher), "launch", "--config_file", str(ROOT / "recipes" / "accelerate" / "cpu-ddp.yaml"),
           "-m", "xuetu.train.finetune", "--set", "model=tiny", "--set", f"data={data}", "--set", "out=ddp",
           "--set", "epochs=2", "--set", "batch_size=2", "--set", "max_length=64", "--set", "min_steps=0",
           "--set", "evaluate=false", "--set", "pack=false"]
    env = {**os.environ, "XUETU_HOME": str(xuetu_home), "HF_HUB_OFFLINE": "1", "MASTER_PORT": "29517"}
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    run = json.loads((xuetu_home / "runs" / "ddp-latest" / "run.json").read_text())
    # 58 training examples, batches of 2, split over 2 processes: 14 micro-batches each per epoch
    assert run["status"] == "finished" and run["total_steps"] == 28 and run["steps"] == 28
    assert models.resolve("ddp").adapter_dir.is_dir()
