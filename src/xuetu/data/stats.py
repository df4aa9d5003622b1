"""`xuetu data stats`: what is in a dataset, counted with the model's tokenizer, with a histogram plot."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from xuetu.data import formats
from xuetu.data.normalize import normalize
from xuetu.data.readers import read
from xuetu.data.template import tokenize_for_training

LANGUAGE_SAMPLE = 5000


def compute_stats(inp: Path, tokenizer, context: int, threshold: float | None = None,
                  cjk_threshold: float | None = None, progress: bool = True) -> dict:
    """threshold, cjk_threshold: near-duplicate similarity, as in `xuetu data clean` (default: its defaults)."""
    from xuetu.data.language import detect_language
    from xuetu.data.minhash import CJK_THRESHOLD, THRESHOLD, MinHasher, NearDupIndex, is_cjk_text

    threshold = THRESHOLD if threshold is None else threshold
    cjk_threshold = CJK_THRESHOLD if cjk_threshold is None else cjk_threshold
    hasher, index = MinHasher(), NearDupIndex(threshold, cjk_threshold)
    seen: set[int] = set()
    lengths, turns = [], []
    counts = Counter()
    languages = Counter()
    for item in tqdm(read(Path(inp)), desc="reading", unit=" records", disable=not progress, mininterval=0.5):
        counts["items"] += 1
        if item.error:
            counts["malformed"] += 1
            continue
        try:
            record = formats.to_record(item.obj, {"source": item.source})
        except formats.FormatError:
            counts["malformed"] += 1
            continue
        counts[f"format:{record.meta['format']}"] += 1
        text = record.joined()
        try:
            lengths.append(len(tokenize_for_training(tokenizer, record).input_ids))
        except Exception:
            lengths.append(len(tokenizer(text, add_special_tokens=False)["input_ids"]))
        turns.append(record.turns)
        if len(lengths) <= LANGUAGE_SAMPLE:
            languages[detect_language(text)] += 1
        text = normalize(text)  # duplicates as `xuetu data clean` would see them
        key = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
        if key in seen:
            counts["exact_duplicates"] += 1
            continue
        seen.add(key)
        sig, cjk = hasher.signature(text), is_cjk_text(text)
        if index.query(sig, cjk):
            counts["near_duplicates"] += 1
        else:
            index.insert(item.source, sig, cjk)
    arr = np.array(lengths or [0])
    records = len(lengths)
    return {
        "input": str(inp), "records": records, "malformed": counts["malformed"],
        "formats": {k.split(":", 1)[1]: v for k, v in counts.items() if k.startswith("format:")},
        "turns": {"total": int(sum(turns)), "mean": round(float(np.mean(turns)), 2) if turns else 0.0},
        "tokens": {"total": int(arr.sum()), "mean": round(float(arr.mean()), 1), "median": int(np.median(arr)),
                   "p95": int(np.percentile(arr, 95)), "max": int(arr.max())},
        "languages": {k: round(v / max(sum(languages.values()), 1), 3) for k, v in languages.most_common()},
        "languages_sampled": min(records, LANGUAGE_SAMPLE),
        "duplicates": {"exact": counts["exact_duplicates"], "near": counts["near_duplicates"],
                       "threshold": threshold, "cjk_threshold": cjk_threshold},
        "context": context,
        "longer_than_context": round(float((arr > context).mean()), 4) if records else 0.0,
        "lengths": lengths,
    }


def text_histogram(lengths: list[int], bins: int = 10, width: int = 40) -> str:
    if not lengths:
        return "(no records)"
    hist, edges = np.histogram(lengths, bins=bins)
    top = max(hist.max(), 1)
    rows = []
    for n, lo, hi in zip(hist, edges[:-1], edges[1:]):
        rows.append(f"{int(lo):>7}-{int(hi):<7} {'█' * int(round(width * n / top)):<{width}} {n}")
    return "\n".join(rows)


def plot_histogram(lengths: list[int], context: int, path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    ax.hist(lengths, bins=min(50, max(len(set(lengths)), 1)), color="#4C72B0", edgecolor="white")
    if lengths and context <= max(lengths) * 1.5:
        ax.axvline(context, color="#C44E52", linestyle="--", label=f"context {context}")
        ax.legend()
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("tokens per record (with the chat template)")
    ax.set_ylabel("records")
    ax.set_title(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def write_report(stats: dict, out_dir: Path, title: str) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    png = plot_histogram(stats["lengths"], stats["context"], out_dir / "token_lengths.png", title)
    data = {k: v for k, v in stats.items() if k != "lengths"}
    path = out_dir / "stats.json"
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return png, path
