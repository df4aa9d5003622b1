"""Where xuetu keeps its state: XUETU_HOME (default ~/.xuetu), and atomic writes inside it."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from xuetu.errors import NotAllowed


def xuetu_home() -> Path:
    """The state directory; created on first use."""
    home = Path(os.environ.get("XUETU_HOME") or Path.home() / ".xuetu").expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    return home


class OutsideRoot(NotAllowed, PermissionError):
    """A path that leads out of the folder it must stay in (a name with `..`, a symlink out)."""


def inside(root: Path, path: Path) -> Path:
    """Return `path` resolved, or raise OutsideRoot if it is not strictly inside `root`."""
    root = root.resolve()
    resolved = path.resolve()
    if resolved == root or root not in resolved.parents:
        raise OutsideRoot(f"refusing to touch {resolved}: it is outside {root}")
    return resolved


def atomic_write_text(path: Path, text: str) -> None:
    """Write a file so that readers see the old or the new content, never half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, data) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
