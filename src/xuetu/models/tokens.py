"""Show how a model's tokenizer splits text, for `xuetu tokenize`.

A Chinese character often takes two or three byte-level tokens; those tokens are shown as
parts of that character ("模 1/2") instead of as mojibake.
"""

from __future__ import annotations

from dataclasses import dataclass

from xuetu.errors import XuetuError
from xuetu.models.ref import ModelRef


@dataclass
class TokenView:
    id: int
    text: str
    """The text this token stands for (the whole character when it is part of one)."""
    part: int = 1
    parts: int = 1


def _hf_tokens(folder, text: str) -> list[TokenView]:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, spans = enc["input_ids"], [tuple(s) for s in enc["offset_mapping"]]
    views = []
    i = 0
    while i < len(spans):
        # Byte-level tokens can split a character, or straddle two: group tokens whose spans overlap.
        start, end = spans[i]
        j = i
        while j + 1 < len(spans) and spans[j + 1][0] < end:
            j += 1
            end = max(end, spans[j][1])
        views += [TokenView(ids[k], text[start:end], k - i + 1, j - i + 1) for k in range(i, j + 1)]
        i = j + 1
    return views


def _gguf_tokens(path, text: str) -> list[TokenView]:
    from llama_cpp import Llama

    llm = Llama(model_path=str(path), vocab_only=True, verbose=False)
    ids = llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
    views, group = [], []
    buf = b""
    for tid in ids:
        buf += llm.detokenize([tid])
        group.append(tid)
        try:
            piece = buf.decode("utf-8")
        except UnicodeDecodeError:
            continue
        views += [TokenView(t, piece, k + 1, len(group)) for k, t in enumerate(group)]
        group, buf = [], b""
    views += [TokenView(t, buf.decode("utf-8", "replace"), k + 1, len(group)) for k, t in enumerate(group)]
    return views


def tokenize(ref: ModelRef, text: str) -> list[TokenView]:
    from xuetu.models import resolve

    base = resolve(ref.base) if ref.base else ref
    if base.hf_dir is not None:
        return _hf_tokens(base.hf_dir, text)
    if base.gguf_file is not None:
        return _gguf_tokens(base.gguf_file, text)
    raise XuetuError(f"{ref.name} has no tokenizer files")
