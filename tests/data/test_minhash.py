import numpy as np
import pytest

from xuetu.data.minhash import (CJK_NGRAM, CJK_THRESHOLD, NGRAM, THRESHOLD, LSHIndex, MinHasher, batch_ngram_hashes, is_cjk_text,
                                optimal_bands, shingles)
from xuetu.errors import XuetuError


def jaccard(a: str, b: str, n: int = NGRAM, cjk_n: int = CJK_NGRAM) -> float:
    sa, sb = set(shingles(a, n, cjk_n)), set(shingles(b, n, cjk_n))
    return len(sa & sb) / len(sa | sb)


def test_shingle_length_follows_the_script():
    assert is_cjk_text("大模型是聪明的孩子") and is_cjk_text("docker compose里 env_file 和 environment 有啥区别")
    assert not is_cjk_text("The phrase 大模 is rare here: one CJK character in fifteen words or so.")
    assert not is_cjk_text("") and not is_cjk_text("2024-01-01")
    assert shingles("LoRA 是什么？", 5, 3) == ["LoR", "oRA", "RA ", "A 是", " 是什", "是什么", "什么？"]
    assert shingles("plain English text", 5, 3) == shingles("plain English text", 5, 5)
    assert shingles("短", 5, 3) == ["短\0\0"]  # a text shorter than a shingle is padded: it still has one


@pytest.mark.parametrize("cjk_n", [2, 3, 5])
def test_vectorised_hashes_are_the_shingles(cjk_n):
    texts = ["短", "", "a slightly longer english text", "中英 mixed 文本 text，LoRA 是什么？", "大模型是聪明的孩子。", "abcd"]
    hashes, owner = batch_ngram_hashes(texts, 5, cjk_n)
    assert owner.tolist() == sorted(owner.tolist())
    for i, text in enumerate(texts):
        expected = shingles(text, 5, cjk_n)
        assert np.count_nonzero(owner == i) == len(expected)
        # equal shingles hash equally, different ones (almost surely) differently
        assert len(set(hashes[owner == i].tolist())) == len(set(expected))


def test_english_signatures_are_unchanged():
    texts = ["The model learns language patterns from a large corpus of text.", "LoRA: r=16, alpha=32"]
    assert np.array_equal(MinHasher().signatures(texts), MinHasher(cjk_ngram=NGRAM).signatures(texts))
    assert not np.array_equal(MinHasher().signature("大模型是聪明的孩子"), MinHasher(cjk_ngram=NGRAM).signature("大模型是聪明的孩子"))


@pytest.mark.parametrize("a, b", [
    ("大模型是参数很多、知识面很广的聪明孩子，能举一反三，也能写文章。", "大模型是参数很多、知识面很广的聪明孩子，能举一反三，也能写代码。"),
    ("The model learns language patterns from a large corpus of text.",
     "The model learns language patterns from a huge corpus of text."),
    ("LoRA 只训练两个低秩矩阵 B 和 A，rank 取 8 或 16。", "LoRA 只训练两个低秩矩阵 B 和 A，rank 取 4 或 16。"),
    ("完全不同的一句话", "Something else entirely, in English."),
])
def test_signature_estimates_jaccard(a, b):
    h = MinHasher(num_perm=256)
    sa, sb = h.signatures([a, b])
    assert abs(float(np.mean(sa == sb)) - jaccard(a, b)) < 0.12


def test_batch_equals_single():
    h = MinHasher()
    texts = ["短", "", "a slightly longer english text", "中英 mixed 文本 text"]
    assert np.array_equal(h.signatures(texts), np.stack([h.signature(t) for t in texts]))


def test_lsh_finds_near_duplicates_not_strangers():
    h, index = MinHasher(), LSHIndex()
    base = "学徒把一个小模型从下载带到部署：拉取、清洗数据、微调、评估、导出和上线。"
    index.insert("a", h.signature(base))
    index.insert("b", h.signature(base + "！"))
    assert index.query(h.signature(base + "。"))[0] == "a"  # the earliest of the two it matches
    assert index.query_all(h.signature(base + "。")) == [0, 1]
    assert index.query(h.signature("知识库助手从文档里检索答案，并给出引用来源。")) is None


def test_one_character_edit_in_short_chinese_is_close():
    """Issue 21: with 5-grams one inserted character left a 46-character record about 0.8 similar, right at the
    old threshold (where LSH finds only about a third of the pairs); with CJK 2-grams it is well above."""
    a = "周末想带孩子去杭州西湖边走走，顺便吃顿地道的杭帮菜，请问有没有适合一家三口的路线和餐馆推荐？"
    b = a[:20] + "的" + a[20:]
    assert jaccard(a, b, 5, 5) < 0.82
    assert jaccard(a, b) > CJK_THRESHOLD + 0.1


def test_bands_fit_the_threshold():
    for threshold in (THRESHOLD, CJK_THRESHOLD, 0.8):
        b, r = optimal_bands(threshold, 128)
        assert b * r <= 128 and threshold - 0.1 < (1 / b) ** (1 / r) < threshold + 0.15


def test_bad_settings_say_what_to_do():
    with pytest.raises(XuetuError, match="cjk_ngram=0") as e:
        MinHasher(cjk_ngram=0)
    assert "default" in e.value.hint
    with pytest.raises(XuetuError, match="threshold 1.5 is not in") as e:
        LSHIndex(1.5)
    assert str(THRESHOLD) in e.value.hint
