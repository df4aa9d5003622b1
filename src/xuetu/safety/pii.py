"""Personal data as guard findings, with positions: the data issue's masker (xuetu.data.pii), reused."""

from __future__ import annotations

from xuetu.data.pii import PII_RULES, mask_pii
from xuetu.safety.rules import Finding

__all__ = ["find", "mask_pii", "spans"]


def spans(text: str) -> list[tuple[int, int, str, str]]:
    """(start, end, kind, placeholder) of every piece of personal data, in the masker's order of precedence."""
    taken: list[tuple[int, int, str, str]] = []
    for kind, pattern, valid, mask in PII_RULES:
        for m in pattern.finditer(text):
            if valid is not None and not valid(m.group(0)):
                continue
            if any(m.start() < e and s < m.end() for s, e, _, _ in taken):
                continue  # already claimed by an earlier rule (an ID card is not also a phone number)
            taken.append((m.start(), m.end(), kind, mask))
    return sorted(taken)


def find(text: str, channel: str, found: list[tuple[int, int, str, str]] | None = None) -> list[Finding]:
    """Findings for the personal data in `text` (or for spans() already found in it)."""
    return [Finding("pii", f"pii.{kind}", f"personal data: {kind.replace('_', ' ')}", mask, channel, s, e)
            for s, e, kind, mask in (spans(text) if found is None else found)]


def mask_spans(text: str, cut: list[tuple[int, int, str]]) -> str:
    """Replace (start, end, placeholder) spans, right to left so earlier positions stay valid."""
    for start, end, placeholder in sorted(cut, reverse=True):
        text = text[:start] + placeholder + text[end:]
    return text
