"""Readers: one module per file type behind a small registry.

Each reader is `read(path) -> Iterator[Item]`: an Item holds a parsed object (or the error that
stopped it) and where it came from (`file:line`), so bad input is reported precisely.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from xuetu.errors import XuetuError


@dataclass
class Item:
    source: str
    obj: object = None
    error: str | None = None
    raw: str | None = None
    """The unparsed text of a malformed item, kept for the rejects file."""


_READERS: dict[str, str] = {}


def register(suffixes: list[str], module: str) -> None:
    for s in suffixes:
        _READERS[s] = module


register([".jsonl", ".ndjson"], "xuetu.data.readers.jsonl")
register([".json"], "xuetu.data.readers.json_array")
register([".csv", ".tsv"], "xuetu.data.readers.csv_rows")
register([".parquet"], "xuetu.data.readers.parquet")
register([".txt", ".md", ".markdown"], "xuetu.data.readers.textfile")


def read(path: Path) -> Iterator[Item]:
    """Items from a file, or from every readable file of a folder (sorted, recursively)."""
    path = Path(path)
    if not path.exists():
        raise XuetuError(f"{path} does not exist")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in _READERS
                       and not any(part.startswith(".") for part in p.relative_to(path).parts))
        if not files:
            raise XuetuError(f"{path} holds no files I can read", f"Readable: {', '.join(sorted(_READERS))}.")
        for f in files:
            yield from read(f)
        return
    suffix = path.suffix.lower()
    if suffix not in _READERS:
        raise XuetuError(f"{path}: unknown file type {suffix or '(none)'}",
                         f"Readable: {', '.join(sorted(_READERS))}, or a folder of .txt/.md files.")
    yield from importlib.import_module(_READERS[suffix]).read(path)
