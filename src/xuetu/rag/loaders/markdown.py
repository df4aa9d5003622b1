"""Markdown: one Section per heading block, its heading the path of ATX headings above it
("Install > On Linux"). Text before the first heading has no heading. Lines inside fenced code
blocks are never headings, so a shell comment like `# install deps` stays code."""

from __future__ import annotations

import re
from pathlib import Path

from xuetu.rag.document import Section
from xuetu.rag.loaders.outline import Outline
from xuetu.rag.loaders.text import read_text

# CommonMark ATX heading: up to 3 spaces, 1-6 '#', then a space (or nothing); a closing run of '#' is dropped.
_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def load(path: Path) -> list[Section]:
    return split_markdown(read_text(path))


def split_markdown(text: str) -> list[Section]:
    outline = Outline(joiner="\n")
    fence = None  # the opening fence ("```" or "~~~~") while inside a code block
    for line in text.split("\n"):
        m = _FENCE.match(line)
        if fence is None and m:
            fence = m.group(1)
        elif fence is not None and m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) \
                and not line.strip()[len(m.group(1)):].strip():
            fence = None  # a closing fence: same character, at least as long, nothing after it
        elif fence is None and (h := _ATX.match(line)):
            outline.heading(len(h.group(1)), (h.group(2) or "").strip())
            continue
        outline.add(line)
    return outline.sections()
