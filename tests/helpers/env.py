"""Point XUETU_HOME somewhere for the length of a block (for session fixtures, which cannot use monkeypatch)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


@contextlib.contextmanager
def home_env(path: Path):
    old = os.environ.get("XUETU_HOME")
    os.environ["XUETU_HOME"] = str(path)
    try:
        yield path
    finally:
        if old is None:
            os.environ.pop("XUETU_HOME", None)
        else:
            os.environ["XUETU_HOME"] = old
