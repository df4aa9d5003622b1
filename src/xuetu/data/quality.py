"""Quality checks that need no model: repeated lines, repeated characters, symbol ratio.
Each returns the measured ratio, so the rejects file can say how far over the limit a record was.
The character-repetition check runs on whole batches (numpy) for speed."""

from __future__ import annotations

import sys
import unicodedata

import numpy as np

from xuetu.data.minhash import batch_ngram_hashes

REPEAT_NGRAM = 10
MIN_REPEAT_LEN = 4 * REPEAT_NGRAM
_EVERYDAY = set(",.;:!?'\"()[]-—…、，。；：！？“”‘’（）《》【】·/%")


_IS_SYMBOL: np.ndarray | None = None


def _symbol_lookup() -> np.ndarray:
    """(0x110001,) bool: True for symbols (S*) and unusual punctuation (P*); the last slot is padding."""
    global _IS_SYMBOL
    if _IS_SYMBOL is None:
        table = np.zeros(sys.maxunicode + 2, dtype=bool)
        for cp in range(sys.maxunicode + 1):
            if 0xD800 <= cp <= 0xDFFF:
                continue
            ch = chr(cp)
            if unicodedata.category(ch)[0] in "SP" and ch not in _EVERYDAY:
                table[cp] = True
        _IS_SYMBOL = table
    return _IS_SYMBOL


def symbol_ratios(texts: list[str]) -> np.ndarray:
    """Share of visible characters that are symbols, per text: high for '@@@@ #### $$$$' noise."""
    out = np.zeros(len(texts))
    if not texts:
        return out
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    codes = np.frombuffer("".join(texts).encode("utf-32-le"), dtype=np.uint32)
    if codes.size == 0:
        return out
    starts = np.r_[0, np.cumsum(lengths)[:-1]]
    nonempty = lengths > 0
    symbols = np.add.reduceat(_symbol_lookup()[codes].astype(np.int64), starts[nonempty])
    spaces = np.add.reduceat(((codes == 32) | (codes == 10) | (codes == 9)).astype(np.int64), starts[nonempty])
    visible = lengths[nonempty] - spaces
    out[nonempty] = np.where(visible > 0, symbols / np.maximum(visible, 1), 0.0)
    return out


def symbol_ratio(text: str) -> float:
    return float(symbol_ratios([text])[0])


def repeated_line_ratio(text: str) -> float:
    """Share of non-empty lines that repeat an earlier line."""
    if text.count("\n") < 2:
        return 0.0
    lines = [line for line in text.split("\n") if line.strip()]
    if len(lines) < 3:
        return 0.0
    return 1 - len(set(lines)) / len(lines)


def repeated_char_ratios(texts: list[str]) -> np.ndarray:
    """For each text, the share of its 10-character windows that occur more than once in it:
    high for 'haha haha haha…' spam, near 0 for prose. Texts under 40 characters get 0."""
    out = np.zeros(len(texts))
    long = [i for i, t in enumerate(texts) if len(t) >= MIN_REPEAT_LEN]
    if not long:
        return out
    hashes, owner = batch_ngram_hashes([texts[i] for i in long], REPEAT_NGRAM)
    keys = np.sort((owner.astype(np.uint64) << np.uint64(32)) | hashes)  # sort + diff beats np.unique here
    first = np.r_[True, keys[1:] != keys[:-1]]
    distinct = np.bincount((keys[first] >> np.uint64(32)).astype(np.int64), minlength=len(long))
    total = np.bincount(owner, minlength=len(long))
    out[long] = 1 - distinct / total
    return out


def repeated_char_ratio(text: str) -> float:
    return float(repeated_char_ratios([text])[0])
