"""Cleaning throughput: 200k generated records (Chinese and English, with planted exact and near
duplicates), cleaned with exact dedup only and with MinHash near-dedup as well; and the quality of
the near-duplicate decision on labelled pairs (`dedup_pairs.py`).

The MinHash stage is compared, in the same run, with datasketch's MinHash + MinHashLSH (the
library most pipelines use) on the same texts, same shingles, same threshold. Precision and recall
per language are measured on the test pairs for the default shingles and threshold, which
`dedup_pairs.choose_on_dev` picked on the dev pairs, and for the old setting (5-grams everywhere,
0.8) as the baseline.

    .venv/bin/python benchmarks/data.py [--records 200000] [--no-record]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).parent))

ZH = "大模型 训练 微调 部署 数据 清洗 学徒 知识库 向量 检索 提示词 评估 量化 蒸馏 注意力 参数 推理 显存".split()
EN = "model training data token prompt answer question vector search memory layer weight learning rate batch".split()


def make_corpus(path: Path, n: int, seed: int = 0) -> dict:
    rng = random.Random(seed)
    planted = {"exact": 0, "near": 0}
    originals = []
    with open(path, "wb") as f:
        for i in range(n):
            r = rng.random()
            if originals and r < 0.05:  # exact duplicate of an earlier record
                obj = rng.choice(originals)
                planted["exact"] += 1
            elif originals and r < 0.10:  # near duplicate: one word changed at the end
                base = rng.choice(originals)
                obj = {**base, "output": base["output"] + (" 好的" if rng.random() < .5 else " ok")}
                planted["near"] += 1
            else:
                words = ZH if rng.random() < 0.5 else EN
                sep = "" if words is ZH else " "
                q = sep.join(rng.choice(words) for _ in range(rng.randint(4, 12))) + f" #{i}"
                a = sep.join(rng.choice(words) for _ in range(rng.randint(15, 60)))
                obj = {"instruction": q, "input": "", "output": a}
                if len(originals) < 20000:
                    originals.append(obj)
            f.write(orjson.dumps(obj) + b"\n")
    return planted


def datasketch_rate(texts: list[str], thresholds: tuple[float, float], ngram: int, cjk_ngram: int) -> float:
    """Records/s of datasketch on the same shingles, one MinHashLSH per kind of record (others, CJK) at the
    same two thresholds as ours."""
    from datasketch import MinHash, MinHashLSH

    from xuetu.data.minhash import is_cjk_text, shingles

    lsh = [MinHashLSH(threshold=t, num_perm=128) for t in thresholds]
    start = time.perf_counter()
    for i, t in enumerate(texts):
        m = MinHash(num_perm=128)
        m.update_batch([s.encode() for s in shingles(t, ngram, cjk_ngram)])
        part = lsh[is_cjk_text(t)]
        if not part.query(m):
            part.insert(i, m)
    return len(texts) / (time.perf_counter() - start)


def ours_rate(texts: list[str], thresholds: tuple[float, float], ngram: int, cjk_ngram: int) -> float:
    from xuetu.data.minhash import MinHasher, NearDupIndex, is_cjk_text

    hasher, index = MinHasher(ngram=ngram, cjk_ngram=cjk_ngram), NearDupIndex(*thresholds)
    start = time.perf_counter()
    for i, t in enumerate(texts):
        sig, cjk = hasher.signature(t), is_cjk_text(t)
        if index.query(sig, cjk) is None:
            index.insert(i, sig, cjk)
    return len(texts) / (time.perf_counter() - start)


def pair_quality() -> tuple[list[str], str]:
    """Table rows: precision and recall per language on the test pairs, old setting and new; and the dev choice."""
    import numpy as np
    from dedup_pairs import CJK_NGRAMS, THRESHOLDS, choose_on_dev, decide, make_pairs, scores

    from xuetu.data.minhash import CJK_NGRAM, CJK_THRESHOLD, NGRAM, THRESHOLD, MinHasher

    pairs = make_pairs()
    settings = [(f"before: {NGRAM}-grams everywhere, 0.8", NGRAM, {"zh": 0.8, "en": 0.8}),
                (f"default: {NGRAM}-grams at {THRESHOLD}, CJK records {CJK_NGRAM}-grams at {CJK_THRESHOLD}", CJK_NGRAM,
                 {"zh": CJK_THRESHOLD, "en": THRESHOLD})]
    rows = ["| language | shingles, threshold | test pairs | precision | recall | recall, records <= 60 chars "
            "| template pairs merged | paraphrases merged | template pairs differing in one place merged "
            "(not in P/R) |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for lang in ("zh", "en"):
        test = [p for p in pairs if p["split"] == "test" and p["lang"] == lang]
        kind = np.array([p["kind"] for p in test])
        short_dup = np.array([p["label"] == 1 and p["length"] == "short" for p in test])
        for name, cjk_ngram, threshold in settings:
            merged = decide(test, MinHasher(ngram=NGRAM, cjk_ngram=cjk_ngram), threshold[lang])
            s = scores(test, merged)
            short = np.count_nonzero(merged & short_dup) / np.count_nonzero(short_dup)
            share = {k: f"{np.count_nonzero(merged & (kind == k))}/{np.count_nonzero(kind == k)}"
                     for k in ("template", "paraphrase", "template_one_place")}
            rows.append(f"| {lang} | {name} | {np.count_nonzero(kind != 'template_one_place')} "
                        f"| {s['precision']:.3f} | {s['recall']:.3f} | {short:.3f} | {share['template']} "
                        f"| {share['paraphrase']} | {share['template_one_place']} |")
    cjk_n, threshold, score = choose_on_dev(pairs)
    same = (cjk_n, threshold) == (CJK_NGRAM, CJK_THRESHOLD)
    dev = (f"- dev choice (best F0.5 on the Chinese dev pairs, CJK {'/'.join(map(str, CJK_NGRAMS))}-grams x thresholds "
           f"{THRESHOLDS[0]:.2f}-{THRESHOLDS[-1]:.2f}): CJK {cjk_n}-grams, {threshold} (F0.5 {score:.3f}), "
           + ("the shipped default" if same else f"**not** the shipped default ({CJK_NGRAM}-grams, {CJK_THRESHOLD})"))
    return rows, dev


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--baseline-records", type=int, default=20_000, help="records for the MinHash-stage comparison")
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()

    from xuetu.data.clean import CleanArgs, clean

    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.jsonl"
        planted = make_corpus(corpus, args.records)
        size_mb = corpus.stat().st_size / 1e6
        exact = clean(corpus, Path(tmp) / "exact.jsonl", CleanArgs(near_dedup=False), progress=False)
        near = clean(corpus, Path(tmp) / "near.jsonl", CleanArgs(), progress=False)
        texts = [line.decode() for line in corpus.read_bytes().splitlines()[: args.baseline_records]]
    from xuetu.data.minhash import CJK_NGRAM, CJK_SHARE, CJK_THRESHOLD, NGRAM, THRESHOLD

    now = (THRESHOLD, CJK_THRESHOLD)
    ours, theirs = ours_rate(texts, now, NGRAM, CJK_NGRAM), datasketch_rate(texts, now, NGRAM, CJK_NGRAM)
    before = ours_rate(texts, (0.8, 0.8), NGRAM, NGRAM)
    quality, dev_choice = pair_quality()

    rows = [
        "| run | records | records/s | kept | exact dups removed | near dups removed | target |",
        "|---|---:|---:|---:|---:|---:|---|",
        f"| clean, exact dedup | {exact.input:,} | {exact.input / exact.seconds:,.0f} | {exact.kept:,} | "
        f"{exact.rejected['exact_duplicate']:,} | - | >= 20,000 |",
        f"| clean, exact + MinHash dedup | {near.input:,} | {near.input / near.seconds:,.0f} | {near.kept:,} | "
        f"{near.rejected['exact_duplicate']:,} | {near.rejected['near_duplicate']:,} | >= 5,000 |",
        "",
        f"| MinHash + LSH stage only ({len(texts):,} records) | records/s |",
        "|---|---:|",
        f"| xuetu (numpy, vectorised) | {ours:,.0f} |",
        f"| baseline: datasketch MinHash + MinHashLSH, same shingles and threshold | {theirs:,.0f} |",
        f"| xuetu with the old setting ({NGRAM}-grams everywhere, 0.8) | {before:,.0f} |",
        "",
        *quality,
        "",
        f"- corpus: {args.records:,} alpaca records, {size_mb:.0f} MB, half Chinese, half English; planted "
        f"{planted['exact']:,} exact and {planted['near']:,} near duplicates",
        f"- MinHash stage: xuetu / datasketch = **{ours / theirs:.1f}x**; shingles: character {NGRAM}-grams, "
        f"{CJK_NGRAM}-grams for records whose word characters are at least {CJK_SHARE:.0%} CJK; thresholds {THRESHOLD} "
        f"and {CJK_THRESHOLD} (CJK)",
        "- labelled pairs (`benchmarks/dedup_pairs.py`, seed 0): duplicates are one-character edits, number, "
        "punctuation and trailing-word changes; distinct records are template records differing in two or more "
        "places, hand-written paraphrases and unrelated records; the base records are split into dev and test halves",
        dev_choice,
        "- full pipeline: read, parse, NFKC + HTML + control-character normalisation, quality filters, dedup, write "
        "kept and rejects",
    ]
    table = "\n".join(rows)
    print(table)
    if not args.no_record:
        from _record import record

        record("data", "Data cleaning (issues 4 and 21: `benchmarks/data.py`)", table)


if __name__ == "__main__":
    main()
