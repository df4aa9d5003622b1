"""Per-example scores and set figures with intervals, against the reference implementations."""

from __future__ import annotations

import numpy as np
import pytest

from xuetu.evaluate.examples import Example
from xuetu.evaluate.scoring import check_metrics, default_metrics, per_example, summarise

REFS = ["The cat sat on the mat.", "LoRA trains two small matrices.", "模型一次能读入的最多 token 数。", "Blue.",
        "Paris is the capital of France.", "量化用更少的位数保存权重。"]
ANSWERS = ["A cat sat on a mat.", "LoRA trains small low-rank matrices beside the weights.", "模型最多能读入的 token 数。",
           "Red.", "The capital of France is Paris.", "量化就是压缩。"]


def examples(refs=REFS, **extra):
    return [Example(id=str(i), messages=[{"role": "user", "content": "q"}], reference=r, **extra)
            for i, r in enumerate(refs)]


def test_corpus_bleu_and_its_interval_match_sacrebleu_resampled():
    import sacrebleu

    row = summarise("bleu", [], ANSWERS, examples(), n_boot=200)
    assert row["value"] == pytest.approx(sacrebleu.corpus_bleu(ANSWERS, [REFS], tokenize="13a").score)
    rng = np.random.default_rng(0)  # the same resamples, scored the slow way
    slow = [sacrebleu.corpus_bleu([ANSWERS[i] for i in idx], [[REFS[i] for i in idx]], tokenize="13a").score
            for idx in rng.integers(0, len(ANSWERS), size=(200, len(ANSWERS)))]
    assert row["low"] == pytest.approx(np.percentile(slow, 2.5)) and row["high"] == pytest.approx(np.percentile(slow, 97.5))


def test_per_example_scores_are_the_references_own():
    import sacrebleu
    from rouge_score import rouge_scorer

    from xuetu.metrics import _Tokenizer

    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=_Tokenizer("char"))
    assert per_example("rougeL", ANSWERS, examples()) == pytest.approx(
        [scorer.score(r, a)["rougeL"].fmeasure for a, r in zip(ANSWERS, REFS)])
    assert per_example("bleu", ANSWERS[:1], examples(REFS[:1])) == pytest.approx(
        [sacrebleu.sentence_bleu(ANSWERS[0], [REFS[0]]).score])
    em = per_example("exact_match", ["blue", "Paris!"], examples(["Blue.", "paris"]))
    assert em == [1.0, 1.0]
    row = summarise("rougeL", per_example("rougeL", ANSWERS, examples()), ANSWERS, examples())
    assert row["low"] <= row["value"] <= row["high"]


def test_metric_names_defaults_and_keywords():
    assert check_metrics(["ROUGE-L", "f1", "em", "rougeL"]) == ["rougeL", "token_f1", "exact_match"]
    assert default_metrics(examples()) == ["rougeL", "bleu", "token_f1", "exact_match"]
    assert "keyword_hit" in default_metrics(examples(keywords=["x"]))
    assert default_metrics(examples(label="pos"))[0] == "classification"
    hits = per_example("keyword_hit", ["LoRA uses low-rank matrices", "no idea"],
                       [Example("0", [{"role": "user", "content": "q"}], "r", keywords=["low-rank"]),
                        Example("1", [{"role": "user", "content": "q"}], "r", keywords=["秩"])])
    assert hits == [1.0, 0.0]
