"""The one language detector: the full answer (data's stats and filter) and the zh-or-en answer (rag's
instructions, retrieval's embedder choice, the guard's refusals), on Chinese, English, mixed and empty text."""

import pytest

from xuetu.data.language import detect_language

CASES = [  # text, full answer, zh-or-en answer
    ("知识库是什么？请用一句话回答。", "zh", "zh"),
    ("What is retrieval-augmented generation?", "en", "en"),
    ("我在用 LoRA 微调模型", "zh", "zh"),  # mixed, mostly Chinese
    ("How do I say 谢谢 politely when someone helps me?", "en", "en"),  # mixed, mostly English
    ("", "und", "en"),
    ("   ?!  ", "und", "en"),
    ("こんにちは、元気ですか", "ja", "zh"),  # zh-or-en has no Japanese: the kanji make it zh
    ("Bonjour tout le monde, comment allez-vous aujourd'hui ?", "fr", "en"),
]


@pytest.mark.parametrize("text,full,zh_or_en", CASES)
def test_detect_language(text, full, zh_or_en):
    assert detect_language(text) == full
    assert detect_language(text, zh_or_en=True) == zh_or_en


def test_the_edges_where_the_two_answers_differ():
    # exactly a fifth Chinese letters: zh for the two-way answer (a fifth or more), not for the full one (over a fifth)
    text = "天天 this word"  # 2 of 10 letters
    assert detect_language(text, zh_or_en=True) == "zh"
    assert detect_language(text) != "zh"  # left to langid
    # digits are not letters for the two-way answer: two Chinese characters among them are enough
    assert detect_language("第12345678步", zh_or_en=True) == "zh"
