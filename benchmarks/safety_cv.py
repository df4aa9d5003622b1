"""The safety scorer's examples, cross-validated: how the lexicon gate's `strong` setting trades attacks caught
against false positives, on texts the model did not learn from. This is how STRONG in safety/scorer/scoring.py was
chosen, without the benchmark sets (benchmarks/data/safety/ plays no part here).

A harmful-content category (violence, sexual, hate, self_harm, illegal) counts only when a word of its lexicon
is in the text, or when the scorer gives that category alone at least `strong`. 1.01 means never without a word.

    .venv/bin/python benchmarks/safety_cv.py [--folds 5] [--no-record]
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
SETTINGS = (1.01, 0.7, 0.6, 0.5, 0.4, 0.3, 0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    from tqdm import tqdm

    from xuetu.safety import scorer as S

    rows = S.load_examples([S.EXAMPLES])
    random.Random(0).shuffle(rows)
    lexicons = S.Scorer({}).lexicons
    tally = {s: [0, 0, 0, 0] for s in SETTINGS}  # caught, attacks, false positives, benign
    for k in tqdm(range(args.folds), desc="folds", unit="fold"):
        model = S.train([r for i, r in enumerate(rows) if i % args.folds != k])
        for strong in SETTINGS:
            sc = S.Scorer({"strong": strong}, lexicons=lexicons, trained=model)
            for r in rows[k::args.folds]:
                hit = bool(sc.find(r["text"], r["channel"]))
                t = tally[strong]
                if r["label"] == "benign":
                    t[2], t[3] = t[2] + hit, t[3] + 1
                else:
                    t[0], t[1] = t[0] + hit, t[1] + 1
    lines = [f"{len(rows)} examples (safety/examples/), {args.folds}-fold cross-validation, threshold {S.THRESHOLD}; "
             f"scorer alone, no rules. Default strong = {S.STRONG}.", "",
             "| strong | attacks caught | false positives |", "|---:|---:|---:|"]
    lines += [f"| {s} | {c / a:.1%} ({c}/{a}) | {f / b:.1%} ({f}/{b}) |" for s, (c, a, f, b) in tally.items()]
    body = "\n".join(lines)
    print(body)
    if not args.no_record:
        from _record import record

        record("safety_cv", "Safety scorer, cross-validated on its own examples (`benchmarks/safety_cv.py`)", body)


if __name__ == "__main__":
    main()
