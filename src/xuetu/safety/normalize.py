"""Views of a text that undo cheap obfuscation, so rules written for plain text still match.

views(text) -> [as written (full-width ASCII made half-width, one for one), NFKC-folded and lower-cased without zero-width characters, de-leeted, letters
joined]. Only the first view maps back to positions in the original text; the others just say "it is there".
"""

from __future__ import annotations

import re
import unicodedata

_ZERO_WIDTH = re.compile("[\u200b-\u200f\u2060-\u2064\ufeff\u00ad]")
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i",
                       "|": "l", "+": "t"})
# A run of word and leet characters, found in one pass (no lookahead rescans the run from each position).
_LEET_RUN = re.compile(r"[\w@$!|+]{3,}")
_LETTER = re.compile(r"[a-z]")
_LEET_CHAR = re.compile(r"[0-9@$!|+]")
_SPACED_LATIN = re.compile(r"\b(?:[a-z][\s.\-_*·]{1,4}){2,}[a-z]\b")
_SPACED_HAN = re.compile(r"(?<=[\u4e00-\u9fff])[\s*\-_.·/|]{1,3}(?=[\u4e00-\u9fff])")


def fold(text: str) -> str:
    """Full-width to ASCII (NFKC), lower case, zero-width characters removed."""
    return _ZERO_WIDTH.sub("", unicodedata.normalize("NFKC", text)).lower()


def _deleet_run(m: re.Match) -> str:
    run = m.group(0)
    return run.translate(_LEET) if _LETTER.search(run) and _LEET_CHAR.search(run) else run


def deleet(text: str) -> str:
    """'h4ck th3 sy5t3m' -> 'hack the system': runs with a letter and a digit or symbol, linear in the text."""
    return _LEET_RUN.sub(_deleet_run, text)


def _join_run(run: str) -> str:
    """'i g n o r e   a l l' -> 'ignore all': single separators join letters, wider gaps separate words."""
    return " ".join(re.sub(r"[\s.\-_*·]", "", word) for word in re.split(r"\s{2,}", run))


def join_spaced(text: str) -> str:
    text = _SPACED_LATIN.sub(lambda m: _join_run(m.group(0)), text)
    return _SPACED_HAN.sub("", text)


_HALF = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}


def halfwidth(text: str) -> str:
    """Full-width ASCII to ASCII, one character for one, so positions stay those of the original."""
    return text.translate(_HALF)


def views(text: str) -> list[str]:
    """The first view keeps positions; rules match case-insensitively, so a view that only lower-cases is left out."""
    first = halfwidth(text)
    folded = fold(text)
    out, seen = [first], {first.lower()}
    for v in (folded, deleet(folded), join_spaced(deleet(folded))):
        if v not in seen:
            out.append(v)
            seen.add(v)
    return out
