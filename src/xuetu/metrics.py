"""Metrics that work for Chinese as well as English: evaluation scores answers with them, and so does
training's base-against-tuned report (train/report.py), which is why they sit below both.

BLEU is sacrebleu's (with its `zh` tokenizer when the text is Chinese); ROUGE-1/2/L are rouge-score's
over tokens where each Chinese character is a token and other text splits into lowercase words (jieba
word segmentation on request), never over whitespace alone. Exact match and token F1 (SQuAD-style) use
the same tokens. Classification metrics are accuracy, per-label and macro precision / recall / F1 and
the confusion matrix, as scikit-learn defines them (a label never predicted has precision 0).
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf]|[A-Za-z0-9]+(?:['’][A-Za-z]+)?")
_HAN = re.compile(r"[\u4e00-\u9fff]")


def is_chinese(text: str) -> bool:
    return len(_HAN.findall(text)) >= max(1, len(text.strip()) // 10)


def tokens(text: str, chinese: str = "char") -> list[str]:
    """Chinese as characters (or jieba words), other text as lowercase words; punctuation dropped."""
    if chinese == "jieba" and _HAN.search(text):
        import jieba

        jieba.setLogLevel(60)
        out = []
        for piece in jieba.lcut(text):
            out += [piece] if _HAN.search(piece) else [t.lower() for t in _TOKEN.findall(piece)]
        return out
    return [t.lower() for t in _TOKEN.findall(text)]


class _Tokenizer:
    def __init__(self, chinese: str):
        self.chinese = chinese

    def tokenize(self, text: str) -> list[str]:
        return tokens(text, self.chinese)


def rouge(predictions: list[str], references: list[str], chinese: str = "char",
          kinds: tuple[str, ...] = ("rouge1", "rouge2", "rougeL")) -> dict[str, float]:
    """Mean ROUGE F1 in [0, 1] per kind (rouge1, rouge2, rougeL)."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(list(kinds), tokenizer=_Tokenizer(chinese))
    totals = dict.fromkeys(kinds, 0.0)
    for pred, ref in zip(predictions, references):
        for kind, score in scorer.score(ref, pred).items():
            totals[kind] += score.fmeasure
    n = len(predictions)
    return {k: (v / n if n else 0.0) for k, v in totals.items()}


def rouge_l(predictions: list[str], references: list[str], chinese: str = "char") -> float:
    """Mean ROUGE-L F1 in [0, 1]."""
    return rouge(predictions, references, chinese, ("rougeL",))["rougeL"]


def exact_match(predictions: list[str], references: list[str]) -> float:
    """Share of answers whose tokens equal the reference's (case, spaces and punctuation ignored)."""
    hits = [tokens(p) == tokens(r) for p, r in zip(predictions, references)]
    return sum(hits) / len(hits) if hits else 0.0


def token_f1(predictions: list[str], references: list[str], chinese: str = "char") -> float:
    """Mean SQuAD-style F1 of the tokens two texts share (as a multiset)."""
    from collections import Counter

    scores = []
    for pred, ref in zip(predictions, references):
        p, r = tokens(pred, chinese), tokens(ref, chinese)
        if not p or not r:
            scores.append(float(p == r))
            continue
        common = sum((Counter(p) & Counter(r)).values())
        if common == 0:
            scores.append(0.0)
            continue
        precision, recall = common / len(p), common / len(r)
        scores.append(2 * precision * recall / (precision + recall))
    return sum(scores) / len(scores) if scores else 0.0


def classification(predictions: list[str], references: list[str]) -> dict:
    """Accuracy, per-label and macro precision / recall / F1, and the confusion matrix (rows: true labels)."""
    labels = sorted(set(references) | set(predictions))
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for pred, ref in zip(predictions, references):
        matrix[index[ref]][index[pred]] += 1
    per = {}
    for label, i in index.items():
        tp = matrix[i][i]
        predicted = sum(row[i] for row in matrix)
        actual = sum(matrix[i])
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per[label] = {"precision": precision, "recall": recall, "f1": f1, "support": actual}
    n = len(references)
    macro = {k: sum(v[k] for v in per.values()) / len(per) if per else 0.0 for k in ("precision", "recall", "f1")}
    accuracy = sum(matrix[i][i] for i in range(len(labels))) / n if n else 0.0
    return {"accuracy": accuracy, "macro": macro, "labels": per, "confusion": {"labels": labels, "matrix": matrix}}


def bleu(predictions: list[str], references: list[str]) -> float:
    """Corpus BLEU in [0, 100]; sacrebleu's zh tokenizer when the references are mostly Chinese."""
    import sacrebleu

    if not predictions:
        return 0.0
    zh = sum(is_chinese(r) for r in references) > len(references) / 2
    return float(sacrebleu.corpus_bleu(predictions, [references], tokenize="zh" if zh else "13a").score)


def keyword_hit_rate(predictions: list[str], keywords: list[list[str]]) -> float:
    """Share of answers that contain at least one of their expected keywords (case-insensitive)."""
    hits = [any(k.lower() in p.lower() for k in ks) for p, ks in zip(predictions, keywords)]
    return sum(hits) / len(hits) if hits else 0.0
