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
    """The unparsed text: of a malformed item (for the rejects file), or of a lazily read line."""

    def parse(self) -> "Item":
        """Parse a lazily read JSON line in place (a no-op otherwise)."""
        if self.obj is None and self.error is None and self.raw is not None:
            import orjson

            try:
                self.obj = orjson.loads(self.raw)
            except orjson.JSONDecodeError as e:
                self.error = f"invalid JSON ({str(e).split(':')[0]})"
        return self


_READERS: dict[str, str] = {}


def register(suffixes: list[str], module: str) -> None:
    for s in suffixes:
        _READERS[s] = module


register([".jsonl", ".ndjson"], "xuetu.data.readers.jsonl")
register([".json"], "xuetu.data.readers.json_array")
register([".csv", ".tsv"], "xuetu.data.readers.csv_rows")
register([".parquet"], "xuetu.data.readers.parquet")
register([".txt", ".md", ".markdown"], "xuetu.data.readers.textfile")


def read(path: Path, lazy: bool = False) -> Iterator[Item]:
    """Items from a file, or from every readable file of a folder (sorted, recursively).

    lazy=True lets line-based readers hand over unparsed lines (Item.raw, obj None); `Item.parse()`
    parses them later, e.g. in a worker process.
    """
    path = Path(path)
    if not path.exists():
        raise XuetuError(f"{path} does not exist")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in _READERS
                       and not any(part.startswith(".") for part in p.relative_to(path).parts))
        if not files:
            raise XuetuError(f"{path} holds no files I can read", f"Readable: {', '.join(sorted(_READERS))}.")
        for f in files:
            yield from read(f, lazy)
        return
    suffix = path.suffix.lower()
    if suffix not in _READERS:
        raise XuetuError(f"{path}: unknown file type {suffix or '(none)'}",
                         f"Readable: {', '.join(sorted(_READERS))}, or a folder of .txt/.md files.")
    module = importlib.import_module(_READERS[suffix])
    yield from (module.read(path, lazy=True) if lazy and getattr(module, "LAZY", False) else module.read(path))
