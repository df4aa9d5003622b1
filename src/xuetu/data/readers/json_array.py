"""A JSON file holding an array of records (or an object with the array under "data")."""

from __future__ import annotations

from pathlib import Path

import orjson

from xuetu.data.encoding import open_text
from xuetu.data.readers import Item
from xuetu.errors import XuetuError


def read(path: Path):
    with open_text(path) as f:
        text = f.read()
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as e:
        raise XuetuError(f"{path.name}: invalid JSON ({e})", "If it holds one object per line, name it .jsonl.") from None
    if isinstance(data, dict):
        data = next((v for k, v in data.items() if k in ("data", "records", "items", "examples") and isinstance(v, list)),
                    [data])
    if not isinstance(data, list):
        raise XuetuError(f"{path.name}: expected an array of records")
    for i, obj in enumerate(data):
        yield Item(f"{path.name}:[{i}]", obj)
