"""SequenceState decodes incrementally: the text it builds token by token is the text of all its tokens."""

from __future__ import annotations

import pytest

from helpers.tiny import build_tokenizer
from xuetu.engines.base import GenerateOptions
from xuetu.engines.sequence import SequenceState


@pytest.mark.parametrize("text", [
    "The capital of France is Paris.  Two  spaces, and a new\nline.",
    "大模型是一个聪明的孩子。训练、微调、部署。",  # characters that span several byte-level tokens
    "mixed 中文 and English, emoji 🙂 and accents: café, naïve.",
])
def test_incremental_text_is_the_whole_decode(text):
    tok = build_tokenizer()
    ids = tok.encode(text, add_special_tokens=False)
    seq = SequenceState([1], GenerateOptions(max_tokens=10_000), tok, stop_ids=set(), budget=10_000)
    shown = ""
    for i in ids:
        chunk = seq.advance(i)
        shown += chunk.text if chunk is not None else ""
    assert seq.text == tok.decode(ids, skip_special_tokens=True) == shown
