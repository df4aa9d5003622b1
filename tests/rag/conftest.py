"""Knowledge-base fixtures: the real embedded embedder (all-MiniLM-L6-v2), pulled once per session and
linked into each test's own XUETU_HOME, and a small bilingual set of documents."""

from __future__ import annotations

import os
import shutil

import pytest

from helpers.env import home_env


@pytest.fixture(scope="session")
def embedder_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("embedder-home")
    with home_env(home):
        from xuetu import models

        models.pull("all-minilm", progress=False)
    return home


@pytest.fixture
def kb_home(embedder_home, xuetu_home, monkeypatch):
    """This test's XUETU_HOME, holding the embedder (hard links: no copy)."""
    shutil.copytree(embedder_home / "models", xuetu_home / "models", copy_function=os.link)
    return xuetu_home


DOCS = {
    "lora.md": "# LoRA\n\nLoRA trains two small low-rank matrices beside each frozen weight matrix. "
               "Only the adapters are updated, so fine-tuning needs far less memory.\n\n"
               "## Rank\n\nThe rank r sets how many parameters the adapter has; r=8 or r=16 are common choices.\n",
    "rag.txt": "Retrieval-augmented generation looks up passages in a knowledge base and puts them into the prompt. "
               "The model then answers from those passages and cites them.\n\n"
               "A vector store such as Chroma keeps one embedding per chunk.",
    "量化.md": "# 量化\n\n量化把模型权重从 32 位浮点数压缩成 8 位或 4 位整数。这样模型占用的内存更少，推理也更快。\n\n"
              "## 代价\n\n量化会带来少量精度损失；INT8 通常几乎看不出差别。\n",
    "蒸馏.txt": "知识蒸馏让一个小的学生模型学习大的教师模型的回答。学生模型更小、更快，适合部署在笔记本电脑上。",
}


@pytest.fixture
def docs(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in DOCS.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def kb_chat_home(kb_home, embedded_home):
    """kb_home plus the embedded chat model (linked from the session store, which stays untouched)."""
    shutil.copytree(embedded_home / "models" / "smollm2", kb_home / "models" / "smollm2", copy_function=os.link)
    return kb_home
