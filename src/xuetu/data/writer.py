"""JSONL output written atomically: to a temporary file, renamed into place only on success."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import orjson


class JsonlWriter:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self._tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        self._f = os.fdopen(fd, "wb")
        self.count = 0

    def write(self, obj) -> None:
        self._f.write(orjson.dumps(obj, option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS))
        self.count += 1

    def write_raw(self, line: bytes) -> None:
        """An already serialised JSON line (ending in a newline)."""
        self._f.write(line)
        self.count += 1

    def commit(self) -> None:
        self._f.close()
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        self._f.close()
        Path(self._tmp).unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *rest):
        if exc_type is None:
            self.commit()
        else:
            self.abort()
