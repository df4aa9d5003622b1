"""Plain text or Markdown: the whole file is one raw-text record (for pretraining)."""

from __future__ import annotations

from pathlib import Path

from xuetu.data.encoding import open_text
from xuetu.data.readers import Item


def read(path: Path):
    with open_text(path) as f:
        text = f.read()
    yield Item(str(path), {"text": text})
