"""The report's figures (matplotlib, no display needed): metric bars with confidence intervals, a confusion
matrix, latency, and the distribution of preference margins. Chinese labels render with a CJK font when one is installed."""

from __future__ import annotations

from pathlib import Path


def _plt():
    import logging

    import matplotlib

    matplotlib.use("Agg")
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    import matplotlib.pyplot as plt
    from matplotlib import font_manager

    names = {f.name for f in font_manager.fontManager.ttflist}
    cjk = [n for n in ("Noto Sans CJK SC", "WenQuanYi Zen Hei", "PingFang SC", "Microsoft YaHei", "SimHei") if n in names]
    plt.rcParams["font.sans-serif"] = cjk + ["DejaVu Sans"]
    plt.rcParams["axes.unicode_minus"] = False
    return plt


UNBOUNDED = ("perplexity", "pref_margin", "desirable_loglik", "undesirable_loglik", "kto_gap")
"""Metrics off the bars' 0-1 scale."""


def _scaled(metric: str, row: dict) -> tuple[float, float, float]:
    f = 0.01 if metric == "bleu" else 0.1 if metric == "judge" else 1.0
    return row["value"] * f, row["low"] * f, row["high"] * f


def metric_bars(path: Path, series: dict[str, dict[str, dict]], labels: dict[str, str]) -> Path:
    """Grouped bars: one group per metric, one bar per model/prompt/setup, with 95% intervals (BLEU/100, judge/10)."""
    import numpy as np

    plt = _plt()
    names = list(series)
    metrics = [k for k in next(iter(series.values()))
               if k not in UNBOUNDED and all(k in s and "low" in s[k] for s in series.values())]
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(metrics) * max(1, len(names)) ** 0.5), 4))
    width = 0.8 / max(1, len(names))
    x = np.arange(len(metrics))
    for i, name in enumerate(names):
        vals = [_scaled(k, series[name][k]) for k in metrics]
        mid = [v[0] for v in vals]
        err = [[max(0, v[0] - v[1]) for v in vals], [max(0, v[2] - v[0]) for v in vals]]
        ax.bar(x + (i - (len(names) - 1) / 2) * width, mid, width, yerr=err, capsize=3, label=name)
    ax.set_xticks(x, [labels.get(k, k) + (" /100" if k == "bleu" else " /10" if k == "judge" else "") for k in metrics])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("score (higher is better)")
    ax.set_title("Scores with 95% bootstrap intervals")
    if len(names) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def confusion(path: Path, labels: list[str], matrix: list[list[int]]) -> Path:
    plt = _plt()
    size = max(3.5, 0.6 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    peak = max((max(r) for r in matrix), default=0)
    for i, row in enumerate(matrix):
        for j, v in enumerate(row):
            ax.text(j, i, str(v), ha="center", va="center", color="white" if v > peak / 2 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def latency_bars(path: Path, rows: dict[str, float], title: str = "Seconds per answer (p50)") -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(5, 1.3 * len(rows)), 3.2))
    ax.bar(list(rows), list(rows.values()), color="#7a9")
    ax.set_ylabel("seconds")
    ax.set_title(title)
    ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def margins(path: Path, series: dict[str, list[float]]) -> Path:
    """Histogram of preference margins (chosen minus rejected log-likelihood per token), one per model, overlaid."""
    import numpy as np

    plt = _plt()
    values = [v for vs in series.values() for v in vs if v == v]
    low, high = (min(values), max(values)) if values else (-1.0, 1.0)
    edges = np.linspace(min(low, 0.0), max(high, 0.0) + 1e-9, 21)
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for name, vs in series.items():
        ax.hist([v for v in vs if v == v], bins=edges, alpha=0.55 if len(series) > 1 else 0.9, label=name)
    ax.axvline(0, color="#444", linewidth=1)
    ax.set_xlabel("margin: chosen - rejected (nats per token)")
    ax.set_ylabel("pairs")
    ax.set_title("Preference margins (right of 0: chosen preferred)")
    if len(series) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
