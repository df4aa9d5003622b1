"""Structure-aware chunking: cut Sections into Chunks of at most `size` tokens.

A chunk never spans two Sections (pages, heading blocks, rows). Inside a Section the text is cut into
units: sentences (English .!? before a space; Chinese 。！？；… anywhere), then lines, then a hard cut
by tokens for anything still too long. Units are counted once each and packed greedily, and a
paragraph that fits in one chunk is never split across two. Each chunk after the first repeats the
last whole sentences of the one before, up to `overlap` tokens, so an answer cut at a boundary
still has its context. Chunk.start/end are exact offsets: section.text[start:end] == chunk.text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from xuetu.rag.document import Chunk, Section

_PARAGRAPH_BREAK = re.compile(r"\n[ \t\f\v\r]*\n\s*")
_LINE_BREAK = re.compile(r"\n")
# A sentence ends at Chinese end punctuation (no space follows it in Chinese), or at .!? before
# whitespace or a Chinese character (mixed text often uses half-width marks); "3.14" and "e.g.," do
# not end one. Closing quotes and brackets stay with the sentence they close.
_SENTENCE_END = re.compile(r"[。！？；…⋯]+[”’」』）】》\"')\]]*|[.!?]+[”’\"')\]]*(?=\s|$|[\u3400-\u9fff])")


@dataclass
class _Unit:
    start: int
    end: int
    tokens: int
    paragraph: int


def chunk_sections(sections: Iterable[Section], source: str, count_tokens: Callable[[str], int],
                   size: int = 256, overlap: int = 32) -> list[Chunk]:
    """Chunks of every Section in order; Chunk.index counts across the whole document."""
    if not isinstance(size, int) or size <= 0:
        raise ValueError(f"chunk size must be a positive number of tokens, got {size!r}")
    if not isinstance(overlap, int) or not 0 <= overlap < size:
        raise ValueError(f"chunk overlap must be at least 0 and less than the chunk size ({size}), got {overlap!r}")
    chunks: list[Chunk] = []
    for section in sections:
        units = _units(section.text, count_tokens, size)
        for start, end in _pack(section.text, units, count_tokens, size, overlap):
            chunks.append(Chunk(text=section.text[start:end], source=source, page=section.page,
                                heading=section.heading, start=start, end=end, index=len(chunks),
                                meta=dict(section.meta)))
    return chunks


def _units(text: str, count: Callable[[str], int], size: int) -> list[_Unit]:
    """Sentences of each paragraph, counted once; a sentence over `size` is cut at its line breaks,
    and a line still over it by tokens."""
    units: list[_Unit] = []
    for paragraph, (p_start, p_end) in enumerate(_split(text, 0, len(text), _PARAGRAPH_BREAK, keep=False)):
        for s_start, s_end in _split(text, p_start, p_end, _SENTENCE_END, keep=True):
            tokens = count(text[s_start:s_end])
            if tokens <= size:
                units.append(_Unit(s_start, s_end, tokens, paragraph))
                continue
            for l_start, l_end in _split(text, s_start, s_end, _LINE_BREAK, keep=False):
                tokens = count(text[l_start:l_end])
                if tokens <= size:
                    units.append(_Unit(l_start, l_end, tokens, paragraph))
                else:
                    pieces = _hard_cut(text, l_start, l_end, count, size)
                    units.extend(_Unit(a, b, tokens, paragraph) for a, b, tokens in pieces)
    return units


def _split(text: str, start: int, end: int, pattern: re.Pattern, keep: bool) -> list[tuple[int, int]]:
    """Spans of text[start:end] between matches of pattern (keep=True: each match ends its span),
    stripped of whitespace at both edges; blank spans are dropped."""
    spans, at = [], start
    for m in pattern.finditer(text, start, end):
        spans.append((at, m.end() if keep else m.start()))
        at = m.end()
    spans.append((at, end))
    return [s for s in (_strip(text, a, b) for a, b in spans) if s[0] < s[1]]


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _hard_cut(text: str, start: int, end: int, count: Callable[[str], int], size: int):
    """Pieces of at most `size` tokens: gallop then binary-search the longest prefix that fits, so a
    piece costs O(log length) counts instead of one count per character."""
    while start < end:
        step = size  # in characters; doubled while the prefix still fits
        while start + step < end and count(text[start:start + step]) <= size:
            step *= 2
        hi = min(start + step, end)
        if count(text[start:hi]) <= size:
            lo = hi
        else:  # text[start:lo] fits (or is the one character we must take anyway); text[start:hi] does not
            lo = start + step // 2 if step > size else start + 1
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if count(text[start:mid]) <= size else (lo, mid)
        cut = lo
        if cut < end and not text[cut].isspace() and not text[cut - 1].isspace():
            space = max(text.rfind(" ", start, cut), text.rfind("\n", start, cut))
            if space > start + (cut - start) // 2:  # back off to a word boundary if one is near
                cut = space
        a, b = _strip(text, start, cut)
        if a < b:
            yield a, b, count(text[a:b])
        start = cut
        while start < end and text[start].isspace():
            start += 1


def _pack(text: str, units: list[_Unit], count: Callable[[str], int], size: int, overlap: int):
    """(start, end) spans of the chunks, greedily packed from units."""
    para_tokens: dict[int, int] = {}
    for u in units:
        para_tokens[u.paragraph] = para_tokens.get(u.paragraph, 0) + u.tokens

    def whole_paragraph_at(k: int) -> int | None:
        """Tokens of the paragraph starting at unit k when it fits in one chunk, else None."""
        p = units[k].paragraph
        starts = k == 0 or units[k - 1].paragraph != p
        return para_tokens[p] if starts and para_tokens[p] <= size else None

    first_new, carry_from = 0, 0  # units[carry_from:first_new] are the overlap carried from the last chunk
    while first_new < len(units):
        total = sum(u.tokens for u in units[carry_from:first_new])
        j = first_new
        while j < len(units) and total + units[j].tokens <= size:
            whole = whole_paragraph_at(j)
            if j > first_new and whole is not None and total + whole > size:
                break  # the next paragraph fits a chunk of its own: start it there rather than split it
            total += units[j].tokens
            j += 1
        j = max(j, first_new + 1)
        # Unit counts add up only roughly (a tokenizer may merge across a boundary, or count the
        # separators), so check the real text once and give back units until it fits.
        while j - carry_from > 1 and count(text[units[carry_from].start:units[j - 1].end]) > size:
            if carry_from < first_new:
                carry_from += 1
            else:
                j -= 1
        yield units[carry_from].start, units[j - 1].end
        if j >= len(units):
            return
        # Overlap: whole trailing units that this chunk added (never its first unit), within the overlap
        # budget and leaving room for the next unit, or for the next paragraph if it fits a chunk alone.
        budget = min(overlap, size - (whole_paragraph_at(j) or units[j].tokens))
        k, carried = j, 0
        while k - 1 > carry_from and k - 1 >= first_new and carried + units[k - 1].tokens <= budget:
            k -= 1
            carried += units[k].tokens
        carry_from, first_new = k, j
