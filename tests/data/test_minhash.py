import numpy as np
import pytest

from xuetu.data.minhash import LSHIndex, MinHasher, batch_ngram_hashes, optimal_bands


def jaccard(a: str, b: str, n: int = 5) -> float:
    sa = {a[i:i + n] for i in range(len(a) - n + 1)}
    sb = {b[i:i + n] for i in range(len(b) - n + 1)}
    return len(sa & sb) / len(sa | sb)


@pytest.mark.parametrize("a, b", [
    ("大模型是参数很多、知识面很广的聪明孩子，能举一反三，也能写文章。", "大模型是参数很多、知识面很广的聪明孩子，能举一反三，也能写代码。"),
    ("The model learns language patterns from a large corpus of text.", "The model learns language patterns from a huge corpus of text."),
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
    hashes, owner = batch_ngram_hashes(texts, 5)
    assert owner.tolist() == sorted(owner.tolist()) and set(owner.tolist()) == {0, 1, 2, 3}


def test_lsh_finds_near_duplicates_not_strangers():
    h, index = MinHasher(), LSHIndex(0.8)
    base = "学徒把一个小模型从下载带到部署：拉取、清洗数据、微调、评估、导出和上线。"
    index.insert("a", h.signature(base))
    assert index.query(h.signature(base + "！"))[0] == "a"
    assert index.query(h.signature("知识库助手从文档里检索答案，并给出引用来源。")) is None


def test_bands_fit_the_threshold():
    b, r = optimal_bands(0.8, 128)
    assert b * r <= 128 and 0.6 < (1 / b) ** (1 / r) < 0.95
