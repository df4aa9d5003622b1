"""`xuetu data stats`: what is in a dataset, counted with the model's tokenizer, with a histogram plot.

Preference data also gets its own counts: pairs, KTO's desirable and undesirable examples, and the tokens of
chosen against rejected answers (a trainer learns "longer is better" when the chosen ones are nearly always
longer). A pair's length is its longer conversation; its language is judged on the prompt and chosen answer."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from xuetu.data import formats, prefs
from xuetu.data.normalize import normalize
from xuetu.data.readers import read
from xuetu.data.record import Record
from xuetu.data.template import tokenize_for_training

LANGUAGE_SAMPLE = 5000


def compute_stats(inp: Path, tokenizer, context: int, threshold: float | None = None,
                  cjk_threshold: float | None = None, progress: bool = True) -> dict:
    """threshold, cjk_threshold: near-duplicate similarity, as in `xuetu data clean` (default: its defaults).
    Duplicates are counted as clean finds them, preference records by their parts (see clean.dedup_view)."""
    from xuetu.data.clean import CleanArgs, Deduper, dedup_view, exact_key
    from xuetu.data.language import detect_language
    from xuetu.data.minhash import CJK_THRESHOLD, THRESHOLD, MinHasher

    threshold = THRESHOLD if threshold is None else threshold
    cjk_threshold = CJK_THRESHOLD if cjk_threshold is None else cjk_threshold
    hasher, dedup = MinHasher(), Deduper(CleanArgs(threshold=threshold, cjk_threshold=cjk_threshold))
    lengths, turns = [], []
    counts = Counter()
    languages = Counter()
    answers: dict[str, list[int]] = {}
    for item in tqdm(read(Path(inp)), desc="reading", unit=" records", disable=not progress, mininterval=0.5):
        record = _record(item, counts)
        if record is None:
            continue
        counts[f"format:{record.meta['format']}"] += 1
        lengths.append(_length(tokenizer, record))
        turns.append(record.turns)
        if record.is_preference:
            _count_preference(record, tokenizer, counts, answers)
        if len(lengths) <= LANGUAGE_SAMPLE:
            languages[detect_language(prefs.judged_text(record) if record.is_preference else record.joined())] += 1
        norm = record.map_text(normalize)  # duplicates as `xuetu data clean` would see them
        texts, kind = dedup_view(norm, norm.joined())
        verdict = dedup.check(exact_key(texts, kind), hasher.signatures(texts), hasher.cjk(texts), kind, item.source)
        if verdict is not None:
            counts[verdict[0]] += 1
    arr = np.array(lengths or [0])
    records = len(lengths)
    return {
        "input": str(inp), "records": records, "malformed": counts["malformed"],
        "formats": {k.split(":", 1)[1]: v for k, v in counts.items() if k.startswith("format:")},
        "turns": {"total": int(sum(turns)), "mean": round(float(np.mean(turns)), 2) if turns else 0.0},
        "tokens": {"total": int(arr.sum()), "mean": round(float(arr.mean()), 1), "median": int(np.median(arr)),
                   "p95": int(np.percentile(arr, 95)), "max": int(arr.max())},
        **({"preferences": _preference_summary(counts, answers)} if answers else {}),
        "languages": {k: round(v / max(sum(languages.values()), 1), 3) for k, v in languages.most_common()},
        "languages_sampled": min(records, LANGUAGE_SAMPLE),
        "duplicates": {"exact": counts["exact_duplicate"], "near": counts["near_duplicate"],
                       "threshold": threshold, "cjk_threshold": cjk_threshold},
        "context": context,
        "longer_than_context": round(float((arr > context).mean()), 4) if records else 0.0,
        "lengths": lengths,
    }


def _record(item, counts: Counter) -> Record | None:
    if item.error:
        counts["malformed"] += 1
        return None
    try:
        return formats.to_record(item.obj, {"source": item.source})
    except formats.FormatError:
        counts["malformed"] += 1
        return None


def _length(tokenizer, record: Record) -> int:
    """Tokens with the chat template; a pair counts its longer side (chosen or rejected), as a trainer must fit."""
    def tokens(r: Record) -> int:
        try:
            return len(tokenize_for_training(tokenizer, r).input_ids)
        except Exception:
            return len(tokenizer(r.joined(), add_special_tokens=False)["input_ids"])

    if not record.is_pair:
        return tokens(record)
    return max(tokens(Record(messages=m, system=record.system)) for m in prefs.sequences(record))


def _count_preference(record: Record, tokenizer, counts: Counter, answers: dict) -> None:
    """Pairs and KTO labels, and the tokens of each answer alone (chosen vs rejected shows a length bias)."""
    def size(message: dict) -> int:
        return len(tokenizer(message["content"], add_special_tokens=False)["input_ids"])

    if record.is_pair:
        counts["pairs"] += 1
        chosen, rejected = size(record.messages[-1]), size(record.rejected)
        answers.setdefault("chosen", []).append(chosen)
        answers.setdefault("rejected", []).append(rejected)
        counts["chosen_longer"] += chosen > rejected
    else:
        kind = "desirable" if record.label else "undesirable"
        counts[kind] += 1
        answers.setdefault(kind, []).append(size(record.messages[-1]))


def _preference_summary(counts: Counter, answers: dict) -> dict:
    def summary(values: list[int]) -> dict:
        return {"mean": round(float(np.mean(values)), 1), "median": int(np.median(values)), "max": int(max(values))}

    return {"pairs": counts["pairs"], "kto": {"desirable": counts["desirable"], "undesirable": counts["undesirable"]},
            "chosen_longer": round(counts["chosen_longer"] / counts["pairs"], 3) if counts["pairs"] else None,
            "answer_tokens": {k: summary(v) for k, v in answers.items()}}


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
