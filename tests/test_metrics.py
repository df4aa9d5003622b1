"""Each metric against its reference implementation (sacrebleu, rouge-score, scikit-learn) on fixed inputs."""

from __future__ import annotations

import pytest

from xuetu import metrics as m

PRED = ["the cat sat on the mat", "a quick brown fox", "hello there world", "LoRA adds two small matrices."]
REF = ["the cat is on the mat", "the quick brown fox jumps", "hello world", "LoRA adds two small matrices"]
ZH_PRED = ["大模型是一个聪明的孩子", "今天天气很好", "我喜欢学习"]
ZH_REF = ["大模型像一个聪明的孩子", "今天的天气非常好", "我爱学习"]


def test_bleu_is_sacrebleus_with_the_right_tokenizer():
    import sacrebleu

    assert m.bleu(PRED, REF) == pytest.approx(sacrebleu.corpus_bleu(PRED, [REF], tokenize="13a").score)
    zh = m.bleu(ZH_PRED, ZH_REF)
    assert zh == pytest.approx(sacrebleu.corpus_bleu(ZH_PRED, [ZH_REF], tokenize="zh").score)
    assert zh != pytest.approx(sacrebleu.corpus_bleu(ZH_PRED, [ZH_REF], tokenize="13a").score)  # whitespace: wrong


def test_rouge_matches_rouge_score_and_splits_chinese_by_character():
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"])
    want = {k: sum(scorer.score(r, p)[k].fmeasure for p, r in zip(PRED, REF)) / len(PRED)
            for k in ("rouge1", "rouge2", "rougeL")}
    assert m.rouge(PRED, REF) == pytest.approx(want)
    # "大模型是一个聪明的孩子" vs "大模型像一个聪明的孩子": 10 of 11 characters shared in order
    assert m.rouge_l(ZH_PRED[:1], ZH_REF[:1]) == pytest.approx(10 / 11)
    assert m.rouge(ZH_PRED[:1], ZH_REF[:1])["rouge2"] == pytest.approx(8 / 10)
    # rouge-score's own tokenizer drops Chinese entirely: the reason for ours
    assert scorer.score(ZH_REF[0], ZH_PRED[0])["rougeL"].fmeasure == 0.0
    assert 0 < m.rouge_l(ZH_PRED, ZH_REF, chinese="jieba") < 1


def test_exact_match_and_token_f1():
    assert m.exact_match(PRED, REF) == pytest.approx(1 / 4)  # only the last, punctuation aside
    # SQuAD F1 for "hello there world" vs "hello world": p = 2/3, r = 1 -> 0.8
    assert m.token_f1(["hello there world"], ["hello world"]) == pytest.approx(0.8)
    # 今 天 天 气 好 shared: p = 5/6, r = 5/8
    assert m.token_f1(["今天天气很好"], ["今天的天气非常好"]) == pytest.approx(2 * (5 / 6) * (5 / 8) / (5 / 6 + 5 / 8))
    assert m.token_f1([""], [""]) == 1.0 and m.token_f1(["x"], [""]) == 0.0


def test_classification_matches_scikit_learn():
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    ref = ["pos", "neg", "neu", "pos", "neg", "pos", "neu", "neg", "pos", "neg"]
    pred = ["pos", "neg", "pos", "pos", "neu", "neg", "neu", "neg", "pos", "pos"]
    out = m.classification(pred, ref)
    labels = out["confusion"]["labels"]
    assert out["accuracy"] == pytest.approx(accuracy_score(ref, pred))
    p, r, f, s = precision_recall_fscore_support(ref, pred, labels=labels, zero_division=0)
    for i, label in enumerate(labels):
        got = out["labels"][label]
        assert (got["precision"], got["recall"], got["f1"], got["support"]) == pytest.approx((p[i], r[i], f[i], s[i]))
    mp, mr, mf, _ = precision_recall_fscore_support(ref, pred, labels=labels, average="macro", zero_division=0)
    assert (out["macro"]["precision"], out["macro"]["recall"], out["macro"]["f1"]) == pytest.approx((mp, mr, mf))
    assert out["confusion"]["matrix"] == confusion_matrix(ref, pred, labels=labels).tolist()
    # a label predicted but never true, and one never predicted: zero, as scikit-learn with zero_division=0
    odd = m.classification(["a", "a", "c"], ["a", "b", "b"])
    p, r, f, _ = precision_recall_fscore_support(["a", "b", "b"], ["a", "a", "c"], labels=["a", "b", "c"],
                                                 zero_division=0)
    assert [odd["labels"][x]["f1"] for x in "abc"] == pytest.approx(list(f))


def test_keyword_hit_rate():
    assert m.keyword_hit_rate(["Paris is big", "no idea"], [["paris"], ["London", "Rome"]]) == 0.5
