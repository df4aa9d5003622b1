"""Document loaders for knowledge bases: one module per file type behind a small registry.

Each loader is `load(path) -> list[Section]`. `load()` here picks one by suffix and turns every way a
file can fail (unknown type, empty, binary, corrupt, encrypted) into a LoadError with a reason the
user can act on, so one bad file is skipped with a message instead of stopping a whole ingest.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from xuetu.rag.document import LoadError, Section

_LOADERS: dict[str, str] = {}


def register(suffixes: list[str], module: str) -> None:
    for s in suffixes:
        _LOADERS[s] = module


register([".pdf"], "xuetu.rag.loaders.pdf")
register([".md", ".markdown"], "xuetu.rag.loaders.markdown")
register([".txt", ".text"], "xuetu.rag.loaders.text")
register([".html", ".htm"], "xuetu.rag.loaders.html")
register([".docx"], "xuetu.rag.loaders.docx")
register([".csv", ".tsv", ".jsonl", ".ndjson"], "xuetu.rag.loaders.table")


def supported_suffixes() -> list[str]:
    return sorted(_LOADERS)


def load(path: Path) -> list[Section]:
    """The file's Sections, none of them blank; LoadError(reason) when it cannot be ingested."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _LOADERS:
        kind = suffix or "(no suffix)"
        raise LoadError(f"unsupported file type {kind}; supported: {', '.join(supported_suffixes())}")
    if not path.is_file():
        raise LoadError("not found" if not path.exists() else "not a regular file")
    if path.stat().st_size == 0:
        raise LoadError("empty file")
    module = importlib.import_module(_LOADERS[suffix])
    try:
        sections = module.load(path)
    except LoadError:
        raise
    except Exception as e:  # a parser's own error type is meaningless to the user; keep its message
        raise LoadError(f"cannot read this {suffix[1:].upper()} file: {type(e).__name__}: {e}") from e
    sections = [s for s in sections if s.text.strip()]
    if not sections:
        raise LoadError("empty file (no text found)")
    return sections
