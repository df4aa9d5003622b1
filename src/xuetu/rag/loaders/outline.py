"""Collects a document's text under its current heading path: shared by the Markdown, HTML and DOCX
loaders, which differ only in how they find headings and paragraphs."""

from __future__ import annotations

from xuetu.rag.document import Section


class Outline:
    """Feed it headings and text in document order; `sections()` gives one Section per heading block."""

    def __init__(self, joiner: str = "\n\n"):
        self.joiner = joiner
        self.path: list[tuple[int, str]] = []  # (level, title) from the outermost heading inwards
        self.parts: list[str] = []
        self.done: list[Section] = []

    def heading(self, level: int, title: str) -> None:
        self._close()
        # A heading ends every open heading of its own level or deeper: "## B" after "### A" pops A.
        while self.path and self.path[-1][0] >= level:
            self.path.pop()
        self.path.append((level, title))

    def add(self, text: str) -> None:
        self.parts.append(text)

    def sections(self) -> list[Section]:
        self._close()
        return self.done

    def _close(self) -> None:
        text = self.joiner.join(self.parts).strip("\n")
        if text.strip():
            heading = " > ".join(t for _, t in self.path if t) or None
            self.done.append(Section(text, heading=heading))
        self.parts = []
