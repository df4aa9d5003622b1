"""Search terms for keyword (BM25) retrieval, from English, Chinese or mixed text.

Runs of Chinese characters go to jieba's search mode, which yields a word and also its shorter
parts ("知识库" gives "知识" and "知识库"), so a query for either finds it. Everything else is split
into lowercased letter/digit words. Common function words of both languages are dropped: they
match nearly every chunk and only add noise to the scores.
"""

from __future__ import annotations

import re

import jieba

jieba.setLogLevel(60)  # jieba logs "Building prefix dict..." on first use; xuetu's output stays clean

_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN = re.compile(f"[{_HAN}]+|[^\\W_{_HAN}]+")
"""A run of Han characters, or a run of other letters and digits (Han is \\w too, so it is excluded)."""

STOPWORDS = frozenset(
    """a an and are as at be but by can do does for from has have how i if in into is it its of on or
    so than that the their them then there these they this to was we were what when where which who
    why will with you your
    的 了 是 在 和 与 及 或 也 就 都 而 着 被 把 让 给 对 从 到 为 以 之 其 这 那 这个 那个 一个 个
    有 我 你 他 她 它 我们 你们 他们 吗 呢 吧 啊 呀 么 什么 怎么 怎样 如何 为什么 哪 哪些 哪个 请 可以 能""".split()
)


def terms(text: str) -> list[str]:
    """The text's search terms in order, duplicates kept (BM25 counts them)."""
    out: list[str] = []
    for match in _TOKEN.finditer(text.lower()):
        run = match.group()
        if "\u3400" <= run[0] <= "\u9fff" or "\uf900" <= run[0] <= "\ufaff":
            out.extend(w for w in jieba.lcut_for_search(run) if w not in STOPWORDS)
        elif run not in STOPWORDS:
            out.append(run)
    return out
