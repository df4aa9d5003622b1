"""The built-in classifier: character n-grams and logistic regression (scikit-learn), trained on a corpus
written for xuetu (safety/corpus/, Chinese and English, disjoint from the benchmark sets). It catches
phrasings the rules were never written for; the rules explain, the classifier generalises.

Four classes: benign, harmful (the moderation categories), injection (override, jailbreak, system-prompt
extraction, exfiltration) and indirect_injection (instructions planted in documents). The weights ship as
ngram.npz (float16); rebuild them with `python -m xuetu.safety.ngram`, which prints cross-validated figures.
It runs on user and document text, not on model output (it learnt requests, not answers).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from xuetu.safety.normalize import fold
from xuetu.safety.rules import Finding

CORPUS = Path(__file__).with_name("corpus")
WEIGHTS = Path(__file__).with_name("ngram.npz")
CLASSES = ["benign", "harmful", "injection", "indirect_injection"]
GROUP = {"violence": "harmful", "sexual": "harmful", "hate": "harmful", "self_harm": "harmful", "illegal": "harmful",
         "injection": "injection", "jailbreak": "injection", "system_prompt_extraction": "injection",
         "exfiltration": "injection", "indirect_injection": "indirect_injection", "benign": "benign"}
CATEGORY = {"harmful": "harmful_request", "injection": "injection", "indirect_injection": "indirect_injection"}
N_FEATURES = 2 ** 16
THRESHOLD = 0.8
"""Probability a non-benign class needs to fire; chosen on the corpus by cross-validation for few false alarms."""


def vectorizer():
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(analyzer="char_wb", ngram_range=(2, 4), n_features=N_FEATURES, alternate_sign=False,
                             norm="l2", preprocessor=fold)


def load_corpus() -> tuple[list[str], list[str], list[str]]:
    texts, labels, channels = [], [], []
    for name in ("attacks.jsonl", "benign.jsonl"):
        for line in (CORPUS / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                texts.append(row["text"])
                labels.append(GROUP[row["label"]])
                channels.append(row["channel"])
    return texts, labels, channels


def fit(texts: list[str], labels: list[str]):
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=8.0, max_iter=2000, class_weight="balanced")
    model.fit(vectorizer().transform(texts), [CLASSES.index(y) for y in labels])
    return model


@lru_cache(maxsize=1)
def _weights() -> tuple[np.ndarray, np.ndarray]:
    data = np.load(WEIGHTS)
    return data["coef"].astype(np.float32), data["intercept"].astype(np.float32)


def probabilities(text: str) -> np.ndarray:
    coef, intercept = _weights()
    x = vectorizer().transform([text])  # (1, N_FEATURES) sparse, l2-normalised
    logits = np.asarray(x @ coef.T).ravel() + intercept
    e = np.exp(logits - logits.max())
    return e / e.sum()


class NgramClassifier:
    def __init__(self, threshold: float = THRESHOLD):
        self.threshold = threshold

    def find(self, text: str, channel: str) -> list[Finding]:
        if channel == "output" or not text.strip():
            return []
        p = probabilities(text)
        best = int(p[1:].argmax()) + 1
        if p[best] < self.threshold:
            return []
        cls = CLASSES[best]
        if cls == "indirect_injection" and channel != "document":
            cls = "injection"  # a user talking to the model directly
        return [Finding(CATEGORY[cls], f"ngram.{cls}", f"the built-in classifier scored it {cls.replace('_', ' ')} "
                        f"({p[best]:.2f} ≥ {self.threshold})", "", channel, source="classifier")]


def main() -> None:
    from sklearn.model_selection import StratifiedKFold

    texts, labels, _ = load_corpus()
    y = np.array(labels)
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    caught, alarms = [], []
    for train, test in folds.split(texts, y):
        model = fit([texts[i] for i in train], list(y[train]))
        p = model.predict_proba(vectorizer().transform([texts[i] for i in test]))
        flagged = p[:, 1:].max(axis=1) >= THRESHOLD
        caught += list(flagged[y[test] != "benign"])
        alarms += list(flagged[y[test] == "benign"])
    print(f"5-fold cross-validation on {len(texts)} texts at threshold {THRESHOLD}: attacks caught "
          f"{np.mean(caught):.1%}, benign flagged {np.mean(alarms):.1%}")
    model = fit(texts, labels)
    np.savez_compressed(WEIGHTS, coef=model.coef_.astype(np.float16), intercept=model.intercept_.astype(np.float16))
    print(f"wrote {WEIGHTS} ({WEIGHTS.stat().st_size / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
