"""Generation metrics that work for Chinese as well as English.

BLEU is sacrebleu's (with its `zh` tokenizer when the text is Chinese); ROUGE-L is rouge-score's
longest-common-subsequence F1 over tokens where each Chinese character is a token and other text
splits into lowercase words (jieba word segmentation on request), never over whitespace alone.
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


def rouge_l(predictions: list[str], references: list[str], chinese: str = "char") -> float:
    """Mean ROUGE-L F1 in [0, 1]."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=_Tokenizer(chinese))
    scores = [scorer.score(ref, pred)["rougeL"].fmeasure for pred, ref in zip(predictions, references)]
    return sum(scores) / len(scores) if scores else 0.0


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
