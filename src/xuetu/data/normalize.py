"""Text normalisation: leftover HTML, Unicode NFKC (full-width to half-width), control characters."""

from __future__ import annotations

import html
import re
import unicodedata

_TAG = re.compile(r"<\s*(script|style)[^>]*>.*?<\s*/\s*\1\s*>|<!--.*?-->|</?[a-zA-Z][^<>]{0,500}>", re.S | re.I)
_HTML_HINT = re.compile(r"</?[a-zA-Z][^<>]*>|&(?:[a-zA-Z]+|#\d+|#x[0-9a-fA-F]+);")
_BLOCK = re.compile(r"<\s*(br|/p|/div|/li|/h[1-6]|/tr)\s*/?>", re.I)
# C0/C1 controls except tab and newline, zero-width characters and the BOM, deleted by str.translate
_CONTROL = dict.fromkeys([*range(0x00, 0x09), *range(0x0B, 0x20), *range(0x7F, 0xA0), 0x200B, 0x200C, 0x200D,
                          0x2060, 0xFEFF])
_CONTROL_HINT = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff]")
_SPACES = re.compile(r"[ \t\u3000\u00a0]{2,}|[\t\u3000\u00a0]")
_BLANK_LINES = re.compile(r"\n{3,}")


def strip_html(text: str) -> str:
    if not _HTML_HINT.search(text):
        return text
    text = _BLOCK.sub("\n", text)
    return html.unescape(_TAG.sub("", text))


def normalize(text: str, form: str = "NFKC") -> str:
    if not text:
        return text
    if "<" in text or "&" in text:
        text = strip_html(text)
    if form != "none" and not text.isascii():  # ASCII is already NFKC
        text = unicodedata.normalize(form, text)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if _CONTROL_HINT.search(text):
        text = text.translate(_CONTROL)
    text = _SPACES.sub(" ", text)
    if "\n" in text:
        text = _BLANK_LINES.sub("\n\n", "\n".join(line.strip() for line in text.split("\n")))
    return text.strip()
