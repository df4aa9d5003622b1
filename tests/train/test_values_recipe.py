"""recipes/values.py end to end on the embedded model, shortened: pairs built from the guard's examples and the
model's own answers, DPO, refusal rates before and after, the plot."""

import json
import runpy
import shutil
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "values.py"


def test_the_values_recipe_runs_and_reports(smollm2, tmp_path, monkeypatch, embedded_home):
    from xuetu.models.store import link_or_copy

    home = tmp_path / "home"
    shutil.copytree(embedded_home / "models", home / "models", copy_function=link_or_copy)
    monkeypatch.setenv("XUETU_HOME", str(home))
    work = tmp_path / "work"
    monkeypatch.setattr(sys, "argv", ["values.py", "--per-kind", "1", "--benign", "4", "--max-tokens", "16",
                                      "--workdir", str(work), "--out", "polite-test", "--set", "max_steps=2"])
    runpy.run_path(str(RECIPE), run_name="__main__")
    pairs = [json.loads(line) for line in (work / "values-pairs.jsonl").read_text(encoding="utf-8").splitlines()]
    kinds = {p["kind"] for p in pairs}
    assert "benign" in kinds and kinds - {"benign"}  # both sides: refuse the harmful, keep helping
    assert all(p["chosen"] != p["rejected"] for p in pairs)
    report = json.loads((work / "values.json").read_text())
    assert set(report["base"]) == set(report["tuned"]) == {"harmful refused", "benign refused"}
    assert all(0.0 <= v <= 1.0 for side in ("base", "tuned") for v in report[side].values())
    assert (work / "values.png").stat().st_size > 5000
    assert report["model"].startswith("polite-test")
