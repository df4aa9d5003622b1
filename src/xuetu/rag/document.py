"""What loaders produce and what the index stores.

A loader turns a file into Sections: runs of text that share a place in the document (a PDF page,
a Markdown heading path, a CSV row). The chunker cuts Sections into Chunks of a token budget; each
Chunk remembers its source, its page or heading, and its character offsets in the Section's text.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class LoadError(Exception):
    """A file that cannot be ingested; `reason` is shown to the user, and the file is skipped."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class Section:
    text: str
    page: int | None = None
    """1-based page number (PDF), else None."""
    heading: str | None = None
    """The heading path, e.g. "Install > On Linux" (Markdown, HTML, DOCX), else None."""
    meta: dict = field(default_factory=dict)
    """Loader-specific extras that are kept on every chunk (e.g. {"row": 3} for tables)."""


@dataclass
class Chunk:
    text: str
    source: str
    """The document's name in the knowledge base (its path relative to what was added)."""
    page: int | None = None
    heading: str | None = None
    start: int = 0
    """Character offset of the chunk's first character in its Section's text."""
    end: int = 0
    """Character offset just past the chunk's last character."""
    index: int = 0
    """The chunk's position within its document."""
    meta: dict = field(default_factory=dict)

    def where(self) -> str:
        """A short human label: 'guide.pdf p. 3' or 'notes.md § Install > Linux'."""
        if self.page is not None:
            return f"{self.source} p. {self.page}"
        if self.heading:
            return f"{self.source} § {self.heading}"
        return self.source
