"""What both an export and `xuetu create -f Modelfile` do to fill a new store model: refuse a name that is
taken, and link files into the staging folder (hard links: store files are never changed in place)."""

from __future__ import annotations

from pathlib import Path

from xuetu.errors import XuetuError


def check_name_free(name: str) -> None:
    """Raise when the store already holds a model called `name`."""
    from xuetu.models import store

    if store.get(name) is not None:
        raise XuetuError(f"model {name!r} already exists", f"Remove it with `xuetu rm {name}` or choose --name.")


def link_file(src: Path, dst: Path) -> None:
    """Put `src` at `dst` (a hard link where possible, else a copy), making dst's folder first."""
    from xuetu.models.store import link_or_copy

    dst.parent.mkdir(parents=True, exist_ok=True)
    link_or_copy(str(src), str(dst))
