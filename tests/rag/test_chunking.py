"""Chunking: exact offsets, sentence and paragraph boundaries in Chinese and English, overlap, the
size limit, Sections never merged, and a linear number of token counts."""

import re

import pytest

from xuetu.rag.chunking import chunk_sections
from xuetu.rag.document import Section


def count(text: str) -> int:
    """Words, with each Chinese character one token (roughly what a real tokenizer does)."""
    return len(re.findall(r"[\u4e00-\u9fff]|[^\s\u4e00-\u9fff]+", text))


def check(sections, chunks, size):
    for c in chunks:
        section = next(s for s in sections if s.page == c.page and s.heading == c.heading and s.meta == c.meta)
        assert section.text[c.start:c.end] == c.text
        assert c.text == c.text.strip() and c.text
        assert count(c.text) <= size
    assert [c.index for c in chunks] == list(range(len(chunks)))


def test_chinese_sentences_split_at_end_punctuation():
    text = "大模型是什么？它是参数很多的模型。训练需要数据；推理需要算力！真的吗……是的。"
    chunks = chunk_sections([Section(text)], "zh.txt", count, size=10, overlap=0)
    assert [c.text for c in chunks] == ["大模型是什么？", "它是参数很多的模型。", "训练需要数据；", "推理需要算力！",
                                        "真的吗……是的。"]
    check([Section(text)], chunks, 10)
    small = chunk_sections([Section("真的吗……是的。“好！”他说。")], "zh.txt", count, size=4, overlap=0)
    assert [c.text for c in small] == ["真的吗……", "是的。", "“好！”", "他说。"]


def test_english_sentences_and_mixed_text():
    text = "Tokens are pieces. They vary! Is 3.14 a number? Yes.\n模型 uses tokens。Mixed 文本 works!中文继续。"
    chunks = chunk_sections([Section(text)], "mix.md", count, size=5, overlap=0)
    assert [c.text for c in chunks] == ["Tokens are pieces. They vary!", "Is 3.14 a number? Yes.",
                                        "模型 uses tokens。", "Mixed 文本 works!", "中文继续。"]


def test_offsets_are_exact_with_messy_whitespace():
    text = "\n\n  First paragraph here.  Second sentence.\r\n \n\t第二段。第二句！ \n\n\n   Last one.   \n"
    sections = [Section(text)]
    chunks = chunk_sections(sections, "doc", count, size=4, overlap=0)
    check(sections, chunks, 4)
    assert [c.text for c in chunks] == ["First paragraph here.", "Second sentence.", "第二段。", "第二句！",
                                        "Last one."]


def test_paragraph_that_fits_is_not_split():
    a = "Alpha one. Alpha two. Alpha three."  # 6 tokens
    b = "Beta one. Beta two. Beta three. Beta four."  # 8 tokens
    text = f"{a}\n\n{b}"
    chunks = chunk_sections([Section(text)], "doc", count, size=10, overlap=0)
    assert [c.text for c in chunks] == [a, b]
    both = chunk_sections([Section(text)], "doc", count, size=14, overlap=0)
    assert [c.text for c in both] == [text]


def test_overlap_repeats_whole_trailing_sentences():
    sentences = [f"Sentence number {n} is here." for n in range(30)]  # 5 tokens each
    text = " ".join(sentences)
    sections = [Section(text)]
    chunks = chunk_sections(sections, "doc", count, size=20, overlap=10)
    check(sections, chunks, 20)
    for prev, nxt in zip(chunks, chunks[1:]):
        assert nxt.start < prev.end  # they overlap...
        shared = text[nxt.start:prev.end]
        assert re.fullmatch(r"Sentence number \d+ is here\.( Sentence number \d+ is here\.)*", shared)  # whole ones
        assert 5 <= count(shared) <= 10
    assert chunks[-1].text.endswith("Sentence number 29 is here.")
    no_overlap = chunk_sections(sections, "doc", count, size=20, overlap=0)
    assert all(b.start >= a.end for a, b in zip(no_overlap, no_overlap[1:]))
    assert len(no_overlap) == 30 * 5 // 20 + 1 and len(chunks) > len(no_overlap)


def test_long_sentence_is_cut_by_tokens():
    words = " ".join(f"w{n}" for n in range(100))
    zh = "长" * 45
    sections = [Section(words), Section(zh, page=2), Section("x" * 5000, page=3)]
    chunks = chunk_sections(sections, "doc", count, size=16, overlap=4)
    check(sections, chunks, 16)
    assert " ".join(c.text for c in chunks if c.page is None) == words
    assert [len(c.text) for c in chunks if c.page == 2] == [16, 16, 13]
    assert "".join(c.text for c in chunks if c.page == 3) == "x" * 5000  # one "token" can still be cut


def test_sections_are_never_merged_and_keep_their_place():
    sections = [Section("Short page one.", page=1), Section("Short page two.", page=2, meta={"k": 1}),
                Section("   ", page=3), Section("安装步骤。", heading="Install > Linux", meta={"row": 4})]
    chunks = chunk_sections(sections, "guide.pdf", count, size=100, overlap=10)
    assert [(c.text, c.page, c.heading, c.meta, c.index, c.source) for c in chunks] == [
        ("Short page one.", 1, None, {}, 0, "guide.pdf"),
        ("Short page two.", 2, None, {"k": 1}, 1, "guide.pdf"),
        ("安装步骤。", None, "Install > Linux", {"row": 4}, 2, "guide.pdf")]
    chunks[1].meta["k"] = 2
    assert sections[1].meta == {"k": 1}  # each chunk has its own copy


def test_real_count_is_checked_when_units_do_not_add_up():
    def count_with_separators(text):  # like a tokenizer that also counts each line break
        return count(text) + text.count("\n")

    text = "\n\n".join(f"Para {n} a b." for n in range(12))  # 4 tokens each, 2 more per break
    chunks = chunk_sections([Section(text)], "doc", count_with_separators, size=12, overlap=0)
    assert all(count_with_separators(c.text) <= 12 for c in chunks)
    assert "".join(c.text for c in chunks).count("Para") == 12


def test_token_counts_stay_linear():
    calls = []

    def counting(text):
        calls.append(len(text))
        return count(text)

    text = "\n\n".join("。".join("中文句子" for _ in range(8)) + "。 An English sentence. Another one!" for _ in range(500))
    chunks = chunk_sections([Section(text)], "big", counting, size=64, overlap=16)
    assert len(chunks) > 100
    assert sum(calls) < 4 * len(text)  # each unit once, plus one check per chunk: no re-counting of growing strings


@pytest.mark.parametrize("size, overlap, message", [
    (0, 0, "chunk size must be a positive"), (-5, 0, "chunk size must be a positive"),
    (10, 10, "less than the chunk size"), (10, -1, "at least 0"), (10, 2.5, "overlap"),
])
def test_bad_arguments(size, overlap, message):
    with pytest.raises(ValueError, match=message):
        chunk_sections([Section("text")], "doc", count, size=size, overlap=overlap)
