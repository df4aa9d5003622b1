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


def _symbol_table() -> dict[int, None]:
    """A str.translate table deleting every symbol (S*) and unusual punctuation (P*) code point."""
    table = {}
    for cp in range(sys.maxunicode + 1):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        cat = unicodedata.category(chr(cp))
        if cat[0] in "SP" and chr(cp) not in _EVERYDAY:
            table[cp] = None
    return table


_SYMBOLS: dict[int, None] | None = None


def symbol_ratio(text: str) -> float:
    """Share of visible characters that are symbols: high for '@@@@ #### $$$$' noise."""
    global _SYMBOLS
    if _SYMBOLS is None:
        _SYMBOLS = _symbol_table()
    visible = len(text) - text.count(" ") - text.count("\n") - text.count("\t")
    return (len(text) - len(text.translate(_SYMBOLS))) / visible if visible > 0 else 0.0


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
