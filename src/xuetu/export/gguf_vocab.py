"""A Hugging Face BPE tokenizer as GGUF metadata: tokens, their types, merges, special ids, template.

llama.cpp tokenises with its own code, chosen by `tokenizer.ggml.pre`; the name must describe the
same pre-tokenisation the Hugging Face tokenizer does, or token ids drift (digits, spaces, CJK).
We read it off tokenizer.json's pre_tokenizer and refuse what we cannot name, rather than guess;
`verify` then checks the ids on a mixed text.
"""

from __future__ import annotations

import json
from pathlib import Path

from xuetu.errors import XuetuError

# Split regexes of the tokenizers llama.cpp knows by name (from those tokenizers' tokenizer.json).
_QWEN2 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
_LLAMA3 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
_SPLITS = {_QWEN2: "qwen2", _LLAMA3: "llama-bpe"}


def _steps(pre: dict | None) -> list[dict]:
    if not pre:
        return []
    return pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else [pre]


def pre_tokenizer_name(tokenizer_json: dict) -> str:
    steps = _steps(tokenizer_json.get("pre_tokenizer"))
    kinds = [s.get("type") for s in steps]
    if kinds == ["ByteLevel"] and steps[0].get("use_regex", True):
        return "gpt-2"
    if kinds == ["Digits", "ByteLevel"] and steps[0].get("individual_digits") and steps[1].get("use_regex", True):
        return "smollm"  # GPT-2's split, with every digit on its own
    if kinds == ["Split", "ByteLevel"] and not steps[1].get("use_regex", True):
        regex = steps[0].get("pattern", {}).get("Regex")
        if regex in _SPLITS:
            return _SPLITS[regex]
    raise XuetuError(f"this tokenizer's pre-tokenizer ({' + '.join(map(str, kinds)) or 'none'}) has no llama.cpp name "
                     "that xuetu knows", "GGUF export covers GPT-2, SmolLM, Qwen2 and Llama 3 style BPE tokenizers; "
                     "use --format hf and convert with llama.cpp's convert_hf_to_gguf.py.")


def add_tokenizer(writer, hf_dir: Path, vocab_size: int) -> None:
    """Tokens, token types, merges, special token ids, add_bos and the chat template."""
    import gguf
    from transformers import AutoTokenizer

    path = hf_dir / "tokenizer.json"
    if not path.is_file():
        raise XuetuError(f"{hf_dir} has no tokenizer.json", "GGUF export needs a fast (tokenizer.json) BPE tokenizer.")
    spec = json.loads(path.read_text(encoding="utf-8"))
    if spec.get("model", {}).get("type") != "BPE":
        raise XuetuError(f"the tokenizer is {spec.get('model', {}).get('type')}, not byte-level BPE",
                         "SentencePiece tokenizers are not covered yet; use --format hf.")
    tok = AutoTokenizer.from_pretrained(hf_dir)
    by_id = {i: t for t, i in tok.get_vocab().items()}
    added = {t["content"]: t for t in spec.get("added_tokens", [])}
    tokens, types = [], []
    for i in range(vocab_size):  # the embedding may be larger than the vocabulary: those rows are padding
        token = by_id.get(i)
        if token is None:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        elif token in added:
            tokens.append(token)
            types.append(gguf.TokenType.CONTROL if added[token].get("special") else gguf.TokenType.USER_DEFINED)
        else:
            tokens.append(token)
            types.append(gguf.TokenType.NORMAL)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre_tokenizer_name(spec))
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    special = gguf.SpecialVocab(hf_dir, load_merges=True, n_vocab=vocab_size)
    if special.chat_template is None and tok.chat_template:  # transformers 5 keeps it in chat_template.jinja
        special.chat_template = tok.chat_template
    special.add_to_gguf(writer, quiet=True)
    if "bos" not in special.add_special_token:
        ids = tok("a").input_ids
        writer.add_add_bos_token(bool(ids) and tok.bos_token_id is not None and ids[0] == tok.bos_token_id)
