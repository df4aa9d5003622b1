"""The GPU check (benchmarks/gpu.py) runs end to end on the CPU with --dry-run, as it will on a lent card:
a random model of the embedded architecture in a store of its own, both training sides, and serving."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "gpu.py"


def _run(*args, home: Path, timeout: int = 600):
    env = {**os.environ, "XUETU_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


def test_dry_run_measures_training_and_serving(tmp_path, xuetu_home):
    out = _run("--dry-run", "--results", str(tmp_path / "gpu.md"), home=xuetu_home)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    text = (tmp_path / "gpu.md").read_text(encoding="utf-8")
    assert "Dry run on the CPU" in text
    for side in ("HF Trainer + PEFT (baseline)", "xuetu"):
        speed, loss = re.search(rf"\| {re.escape(side)} \| ([\d,]+) \| [\d,]+ \| ([\d.]+) \|", text).groups()
        assert float(speed.replace(",", "")) > 0 and 0 < float(loss) < 20  # a real run, a finite loss
    assert re.search(r"xuetu / baseline: \*\*[\d.]+x\*\*", text)
    assert "behind StaticBatchRunner (" in text  # the runner a CUDA card gets by default
    for streams in ("1 stream", "4 streams"):
        tokens, aggregate = re.search(rf"\| {streams} \| (\d+) \| ([\d,.]+) \|", text).groups()
        assert int(tokens) > 0 and float(aggregate.replace(",", "")) > 0
    # the random model lived in a store of its own: the user's store holds nothing new
    assert not (xuetu_home / "models" / "gpu-check").exists()


def test_without_a_gpu_it_says_how_to_run(xuetu_home):
    out = _run(home=xuetu_home, timeout=120)
    assert out.returncode != 0 and "--dry-run" in out.stderr
