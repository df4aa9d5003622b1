"""HTML (BeautifulSoup with the stdlib parser): the readable text of a page, one Section per h1-h6
heading block, its heading the path of headings above it. Scripts, styles and navigation are dropped;
each paragraph, list item, table row or <pre> becomes a paragraph of the Section."""

from __future__ import annotations

import re
from pathlib import Path

from xuetu.rag.document import Section
from xuetu.rag.loaders.outline import Outline
from xuetu.rag.loaders.text import read_text

_DROP = ["script", "style", "nav", "noscript", "template", "svg", "head", "iframe"]
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
# Elements whose whole text is one paragraph; nested blocks inside them are not visited again.
_BLOCKS = {"p", "li", "dt", "dd", "caption", "figcaption", "address", "summary"}
# Inline elements continue the paragraph around them (`Hello <b>world</b>!` is one paragraph).
_INLINE = {"a", "abbr", "b", "bdi", "bdo", "cite", "code", "data", "del", "dfn", "em", "font", "i", "ins",
           "kbd", "mark", "q", "s", "samp", "small", "span", "strong", "sub", "sup", "time", "u", "var"}
_CJK = r"[\u3000-\u303f\u3400-\u9fff\uf900-\ufaff\uff00-\uffef]"
_CJK_GAP = re.compile(f"(?<={_CJK})\\s+(?={_CJK})")


def load(path: Path) -> list[Section]:
    return split_html(read_text(path))


def split_html(markup: str) -> list[Section]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(markup, "html.parser")
    for tag in soup.find_all(_DROP):
        tag.decompose()
    for br in soup.find_all("br"):
        br.replace_with("\n")
    outline = Outline()
    _visit(soup, outline)
    return outline.sections()


def _visit(node, outline: Outline) -> None:
    from bs4 import Comment, NavigableString, Tag

    inline: list[str] = []  # loose text and inline elements since the last block
    for child in node.children:
        if isinstance(child, Comment):
            continue
        if isinstance(child, NavigableString) or (isinstance(child, Tag) and child.name in _INLINE):
            inline.append(child.get_text() if isinstance(child, Tag) else str(child))
            continue
        if not isinstance(child, Tag):
            continue
        _add(outline, "".join(inline))
        inline = []
        if child.name in _HEADINGS:
            outline.heading(_HEADINGS[child.name], _squash(child.get_text()))
        elif child.name == "pre":
            if child.get_text().strip():
                outline.add(child.get_text().strip("\n"))  # code keeps its lines and indentation
        elif child.name in _BLOCKS:
            _add(outline, child.get_text())
        elif child.name == "tr":
            cells = [_squash(c.get_text()) for c in child.find_all(["td", "th"], recursive=False)]
            _add(outline, " | ".join(c for c in cells if c))
        else:
            _visit(child, outline)
    _add(outline, "".join(inline))


def _add(outline: Outline, text: str) -> None:
    if text := _squash(text):
        outline.add(text)


def _squash(text: str) -> str:
    # Source line breaks are not text: collapse them, and drop them entirely between Chinese characters.
    return _CJK_GAP.sub("", " ".join(text.split()))
