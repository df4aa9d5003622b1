"""Learning the scorer: the examples (safety/examples/*.jsonl and the user's own) and the logistic
regression fitted on their n-grams."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from xuetu.errors import XuetuError
from xuetu.safety.scorer.features import counts, prepare
from xuetu.safety.scorer.model import LABELS, Model

VERSION = 2  # bump when features or training change: old caches are then ignored
EXAMPLES = Path(__file__).parent.parent / "examples"
C = 30.0


def load_examples(folders: list[Path]) -> list[dict]:
    """{text, label, channel} rows from every *.jsonl in the folders; a bad line is an error that says where."""
    rows = []
    for folder in folders:
        for path in sorted(Path(folder).glob("*.jsonl")):
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as e:
                raise XuetuError(f"cannot read the safety examples {path}: {e}", "Save it as UTF-8 JSONL.") from None
            for n, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    text, label = row["text"], row["label"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    raise XuetuError(f"{path}:{n} is not an example",
                                     'Each line needs {"text": ..., "label": ...}, and optionally "channel": '
                                     '"user" or "document".') from None
                channel = row.get("channel", "user")
                if label not in LABELS or not isinstance(text, str) or not text.strip() or \
                        channel not in ("user", "document"):
                    raise XuetuError(f"{path}:{n}: the label must be one of {', '.join(LABELS)}, the text not "
                                     "empty, and the channel user or document", "Fix the line, or remove it.")
                rows.append({"text": text, "label": label, "channel": channel})
    return rows


def train(rows: list[dict]) -> Model:
    from sklearn.feature_extraction.text import TfidfTransformer
    from sklearn.linear_model import LogisticRegression

    labels = {r["label"] for r in rows}
    if "benign" not in labels or len(labels) < 2:
        raise XuetuError("the scorer's examples need benign texts and at least one attack category")
    x = counts([prepare(r["text"], r["channel"]) for r in rows])
    tfidf = TfidfTransformer(sublinear_tf=True).fit(x)
    idf = tfidf.idf_.astype(np.float32)
    idf[np.asarray((x != 0).sum(axis=0)).ravel() == 0] = 0.0  # features no example has never count
    # Benign texts weigh as much as all attacks together, and the categories equally among themselves: a
    # text with little to go on (a greeting) then starts at even odds, not at 10 to 1 for "some attack".
    y = [r["label"] for r in rows]
    n = {lab: y.count(lab) for lab in labels}
    k = len(labels) - 1
    weight = np.array([len(y) / 2 / n[lab] if lab == "benign" else len(y) / 2 / k / n[lab] for lab in y])
    model = LogisticRegression(C=C, solver="saga", max_iter=300, tol=1e-3, random_state=0)
    model.fit(tfidf.transform(x), y, sample_weight=weight)
    import scipy.sparse as sp

    coef = model.coef_.T.astype(np.float32)
    coef[idf == 0] = 0.0
    counts_by = {lab: sum(r["label"] == lab for r in rows) for lab in sorted(labels)}
    return Model([str(c) for c in model.classes_], idf, sp.csr_matrix(coef), model.intercept_.astype(np.float32),
                 {"version": VERSION, "examples": counts_by})
