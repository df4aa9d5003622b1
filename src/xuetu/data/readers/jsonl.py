"""JSON Lines: one JSON object per line; blank lines are skipped."""

from __future__ import annotations

from pathlib import Path

import orjson

from xuetu.data.encoding import open_text
from xuetu.data.readers import Item


LAZY = True  # can hand over raw lines for parsing elsewhere


def read(path: Path, lazy: bool = False):
    with open_text(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            if lazy:
                yield Item(f"{path.name}:{n}", raw=line.rstrip("\n"))
                continue
            try:
                yield Item(f"{path.name}:{n}", orjson.loads(line))
            except orjson.JSONDecodeError as e:
                yield Item(f"{path.name}:{n}", error=f"invalid JSON ({str(e).split(':')[0]})", raw=line.rstrip("\n"))
