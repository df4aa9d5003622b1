"""The bundled quickstart example reads as training data and as knowledge-base documents."""

import pytest

import xuetu.data
from xuetu.errors import XuetuError
from xuetu.examples import example_path
from xuetu.data.language import detect_language
from xuetu.rag.chunking import chunk_sections
from xuetu.rag.loaders import load


def test_ai_tutor_qa_is_bilingual_training_data():
    records = list(xuetu.data.load(example_path("ai_tutor") / "qa.jsonl"))
    assert len(records) == 40
    questions = [r.messages[0]["content"] for r in records]
    assert sum(detect_language(q, zh_or_en=True) == "zh" for q in questions) == 20
    assert all(r.messages[-1]["role"] == "assistant" and r.messages[-1]["content"] for r in records)


def test_ai_tutor_docs_load_and_chunk():
    docs = sorted((example_path("ai_tutor") / "docs").glob("*.md"))
    assert len(docs) == 10
    for d in docs:
        chunks = chunk_sections(load(d), d.name, lambda t: len(t.split()) + sum(c > "\u3000" for c in t), 120, 16)
        assert chunks and all(c.heading for c in chunks)


def test_unknown_example():
    with pytest.raises(XuetuError, match="Examples: ai_tutor"):
        example_path("nope")
