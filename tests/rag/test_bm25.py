"""The BM25 keyword index: English, Chinese and mixed queries, filters, save/load, empty cases."""

from __future__ import annotations

import pytest

from xuetu.rag.bm25 import BM25Index
from xuetu.rag.terms import terms

DOCS = {
    "en-quant": ("Quantization stores model weights in 4-bit integers, so the model needs far less memory.",
                 {"source": "guide.md", "tag:en": True}),
    "en-lora": ("LoRA fine-tuning trains small adapter matrices instead of every weight of the network.",
                {"source": "guide.md", "tag:en": True}),
    "en-rag": ("A knowledge base splits documents into chunks and retrieves the relevant ones for each question.",
               {"source": "rag.md", "tag:en": True}),
    "zh-quant": ("模型量化把权重从十六位浮点数压缩成四位整数，显存占用大大减少。", {"source": "指南.md", "tag:zh": True}),
    "zh-tune": ("微调是在预训练模型的基础上，用少量标注数据继续训练，让模型学会新的任务。", {"source": "指南.md", "tag:zh": True}),
    "zh-kb": ("知识库把文档切成小块并建立索引，回答问题时先检索相关段落，再交给模型生成答案。",
              {"source": "知识库.md", "tag:zh": True}),
    "mixed": ("用 LoRA 微调 Qwen 模型时，rank 通常取 8 或 16。", {"source": "notes.md", "tag:zh": True, "tag:en": True}),
}


@pytest.fixture(scope="module")
def index() -> BM25Index:
    ids = list(DOCS)
    return BM25Index.build(ids, [DOCS[i][0] for i in ids], [DOCS[i][1] for i in ids])


def top(index: BM25Index, query: str, **kw) -> str | None:
    hits = index.query(query, 3, **kw)
    return hits[0].id if hits else None


@pytest.mark.parametrize("query, expected", [
    ("How does quantization reduce memory?", "en-quant"),
    ("adapter matrices", "en-lora"),
    ("retrieve relevant chunks", "en-rag"),
    ("什么是模型量化？", "zh-quant"),
    ("显存占用", "zh-quant"),
    ("如何微调预训练模型", "zh-tune"),
    ("知识库怎么检索", "zh-kb"),
    ("LoRA 的 rank 取多少", "mixed"),
])
def test_queries_find_their_passage(index, query, expected):
    assert top(index, query) == expected


def test_hits_carry_text_metadata_and_falling_scores(index):
    hits = index.query("微调 LoRA", 10)
    assert {h.id for h in hits} == {"en-lora", "zh-tune", "mixed"}  # only chunks sharing a term
    assert hits[0].id == "mixed"  # the one with both terms
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert hits[0].text == DOCS["mixed"][0] and hits[0].metadata == DOCS["mixed"][1]
    assert len(index.query("微调 LoRA", 1)) == 1


def test_chinese_terms_include_the_shorter_words():
    assert {"知识", "知识库"} <= set(terms("知识库"))
    assert terms("什么是量化") == ["量化"]  # question words and 是 are stopwords
    assert terms("The QUANTIZATION of LLMs") == ["quantization", "llms"]


@pytest.mark.parametrize("where, expected", [
    ({"source": ["指南.md"]}, {"zh-tune"}),
    ({"tags": ["en"]}, {"en-lora", "mixed"}),
    ({"tags": ["zh"], "source": ["notes.md"]}, {"mixed"}),
    ({"source": ["nowhere.md"]}, set()),
    ({"tags": ["fr"]}, set()),
    ({"tags": []}, {"en-lora", "zh-tune", "mixed"}),
])
def test_filters(index, where, expected):
    assert {h.id for h in index.query("微调 LoRA", 10, where=where)} == expected


def test_empty_cases(index):
    assert index.query("zebra xylophone", 5) == []  # no known term
    assert index.query("the of and", 5) == []  # only stopwords
    assert index.query("", 5) == []
    assert index.query("微调", 0) == []
    empty = BM25Index.build([], [], [])
    assert len(empty) == 0 and empty.query("微调", 5) == []


def test_save_load_roundtrip(index, tmp_path):
    folder = tmp_path / "bm25"
    BM25Index.build(["old"], ["an older index"], [{}]).save(folder)
    index.save(folder)  # replaces the older one
    loaded = BM25Index.load(folder)
    assert len(loaded) == len(index) == len(DOCS)
    for q in ("知识库怎么检索", "LoRA 微调", "quantization memory"):
        assert loaded.query(q, 5, where={"tags": ["zh", "en"]}) == index.query(q, 5, where={"tags": ["zh", "en"]})
    assert loaded.query("older", 5) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bm25"]  # no temporary or old folder left behind

    BM25Index.build([], [], []).save(folder)
    assert len(BM25Index.load(folder)) == 0
