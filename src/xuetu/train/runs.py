"""Training runs under XUETU_HOME/runs/<name>: run.json (config and status), metrics.jsonl, checkpoints/,
curves.png and report.md."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

from xuetu.errors import NotFound
from xuetu.home import atomic_write_json, inside, xuetu_home


def runs_root() -> Path:
    root = xuetu_home() / "runs"
    root.mkdir(parents=True, exist_ok=True)
    return root


def run_name(model_name: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "-", model_name.lower()).strip("-.")


def run_dir(name: str) -> Path:
    return inside(runs_root(), runs_root() / run_name(name))


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


class Run:
    def __init__(self, path: Path):
        self.path = path
        self.path.mkdir(parents=True, exist_ok=True)
        self.info_path = path / "run.json"
        self.metrics_path = path / "metrics.jsonl"

    @property
    def info(self) -> dict:
        return json.loads(self.info_path.read_text(encoding="utf-8")) if self.info_path.is_file() else {}

    def update(self, **fields) -> None:
        atomic_write_json(self.info_path, {**self.info, **fields})

    def log(self, record: dict) -> None:
        with open(self.metrics_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def metrics(self) -> list[dict]:
        if not self.metrics_path.is_file():
            return []
        return [json.loads(line) for line in self.metrics_path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def truncate_metrics(self, step: int) -> None:
        """On resume: forget what was logged after the checkpoint, so the log has no duplicates."""
        kept = [m for m in self.metrics() if m.get("step", 0) <= step]
        self.metrics_path.write_text("".join(json.dumps(m) + "\n" for m in kept), encoding="utf-8")

    def plot(self) -> Path:
        return plot_curves(self.metrics(), self.path / "curves.png", self.info.get("out", self.path.name))


def plot_curves(metrics: list[dict], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if any("margin" in m or "reward" in m for m in metrics):
        return _plot_panels(plt, metrics, path, title)
    train = [(m["step"], m["loss"]) for m in metrics if "loss" in m]
    val = [(m["step"], m["val_loss"]) for m in metrics if "val_loss" in m]
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    if train:
        ax.plot(*zip(*train), label="training loss", color="#4C72B0", linewidth=1.2)
    if val:
        ax.plot(*zip(*val), label="validation loss", color="#C44E52", marker="o", linewidth=1.5)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (cross-entropy, nats)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if train or val:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


# Preference and reward training: one panel per question a user asks of the run.
PANELS = [("loss", [("loss", "training"), ("val_loss", "validation")]),
          ("rewards", [("reward_chosen", "chosen"), ("reward_rejected", "rejected"), ("reward", "mean reward")]),
          ("margin / KL", [("margin", "reward margin"), ("val_margin", "validation margin"), ("kl", "KL to reference")]),
          ("preference accuracy", [("accuracy", "training"), ("val_accuracy", "validation")])]


def _plot_panels(plt, metrics: list[dict], path: Path, title: str) -> Path:
    fig, axes = plt.subplots(2, 2, figsize=(10, 6.5), dpi=110)
    for ax, (name, series) in zip(axes.flat, PANELS):
        drawn = False
        for key, label in series:
            points = [(m["step"], m[key]) for m in metrics if isinstance(m.get(key), (int, float)) and m[key] == m[key]]
            if points:
                ax.plot(*zip(*points), label=label, marker="o" if key.startswith("val_") else None, linewidth=1.2)
                drawn = True
        ax.set_title(name)
        ax.set_xlabel("optimizer step")
        ax.grid(alpha=0.3)
        if drawn:
            ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def list_runs() -> list[dict]:
    out = []
    for info_path in sorted(runs_root().glob("*/run.json")):
        info = json.loads(info_path.read_text(encoding="utf-8"))
        out.append({"run": info_path.parent.name, **info})
    return out


def get_run(name: str) -> Run:
    path = run_dir(name)
    if not (path / "run.json").is_file():
        known = ", ".join(r["run"] for r in list_runs()) or "none yet"
        raise NotFound(f"no run named {name!r}", f"Runs: {known}.")
    return Run(path)
