"""The model store under XUETU_HOME/models: one folder per `[namespace/]model/tag` with a manifest.json.

A model becomes visible only when its manifest is in place: everything is assembled in a
staging folder under XUETU_HOME/tmp and moved in with one rename. Nothing here reads or
writes outside XUETU_HOME.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from xuetu.errors import Conflict, XuetuError
from xuetu.home import atomic_write_json, inside, xuetu_home
from xuetu.models.checksums import file_table
from xuetu.models.names import parse_name
from xuetu.models.ref import ModelRef

MANIFEST = "manifest.json"
SCHEMA = 1


def models_root() -> Path:
    root = xuetu_home() / "models"
    root.mkdir(parents=True, exist_ok=True)
    return root


def model_path(name: str) -> Path:
    """The folder a (validated) name maps to; guaranteed to be inside the store."""
    parsed = parse_name(name)
    return inside(models_root(), models_root().joinpath(*parsed.parts))


def get(name: str) -> ModelRef | None:
    """The model stored under exactly this name, or None."""
    path = model_path(name)
    mf = path / MANIFEST
    if not mf.is_file():
        return None
    try:
        manifest = json.loads(mf.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise XuetuError(f"the manifest of {name} is unreadable ({e})", f"Remove it with `xuetu rm {name}` and pull again.")
    return ModelRef(name=manifest.get("name") or str(parse_name(name)), path=path, manifest=manifest)


def list_models() -> list[ModelRef]:
    refs = []
    root = models_root()
    for mf in sorted(root.rglob(MANIFEST)):
        rel = mf.parent.relative_to(root).parts
        if len(rel) not in (2, 3) or any(p.startswith(".") for p in rel):
            continue
        name = ("/".join(rel[:-1])) + ":" + rel[-1]
        with contextlib.suppress(XuetuError):
            if ref := get(name):
                refs.append(ref)
    return refs


@contextlib.contextmanager
def staging() -> Iterator[Path]:
    """A scratch folder on the store's filesystem; removed afterwards unless moved in by `install`."""
    tmp = xuetu_home() / "tmp" / uuid.uuid4().hex
    tmp.mkdir(parents=True)
    try:
        yield tmp
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def install(name: str, staged: Path, manifest: dict) -> ModelRef:
    """Checksum the staged files, write the manifest, and move the folder into place atomically."""
    canonical = str(parse_name(name))
    final = model_path(canonical)
    manifest = {
        "schema": SCHEMA,
        "name": canonical,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        **manifest,
        "files": file_table(staged),
    }
    atomic_write_json(staged / MANIFEST, manifest)
    final.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if final.exists():
        old = xuetu_home() / "tmp" / f"old-{uuid.uuid4().hex}"
        os.replace(final, old)
    os.replace(staged, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return ModelRef(name=canonical, path=final, manifest=manifest)


def dependents(name: str) -> list[str]:
    """Models (adapters) whose base is `name`."""
    canonical = str(parse_name(name))
    return [r.name for r in list_models() if r.base == canonical]


def remove(name: str) -> str:
    ref = get(name)
    if ref is None:
        raise XuetuError(f"model {name!r} is not in the store", "See what is there with `xuetu list`.")
    if users := dependents(ref.name):
        raise XuetuError(f"{ref.name} is the base of {', '.join(users)}", "Remove those first with `xuetu rm`.")
    path = inside(models_root(), ref.path)
    trash = xuetu_home() / "tmp" / f"rm-{uuid.uuid4().hex}"
    trash.parent.mkdir(parents=True, exist_ok=True)
    os.replace(path, trash)  # disappears from the store at once, even if the delete is interrupted
    shutil.rmtree(trash, ignore_errors=True)
    # Tidy empty parent folders (the model name level), never the store root.
    for parent in path.parents:
        if parent == models_root() or any(parent.iterdir()):
            break
        parent.rmdir()
    return ref.name


def link_or_copy(src: str, dst: str) -> None:
    """Copy a file as a hard link where the file system allows, else as a real copy.

    Store files are never modified in place, so a hard link is a safe, free copy."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def copy(src: str, dst: str, overrides: dict | None = None, overwrite: bool = False) -> ModelRef:
    """Copy `src` to `dst`; `overrides` replaces manifest keys such as params or system.

    An existing `dst` is a Conflict unless `overwrite`; a model is never copied onto itself."""
    ref = get(src)
    if ref is None:
        raise XuetuError(f"model {src!r} is not in the store", "See what is there with `xuetu list`.")
    if (existing := get(dst)) is not None and (not overwrite or existing.name == ref.name):
        raise Conflict(f"model {existing.name!r} already exists",
                       f"Remove it first with `xuetu rm {dst}`, or pick another name.")
    with staging() as tmp:
        target = tmp / "m"
        shutil.copytree(ref.path, target, copy_function=link_or_copy)
        (target / MANIFEST).unlink()
        manifest = {k: v for k, v in ref.manifest.items() if k not in {"name", "created_at", "files", "schema"}}
        manifest["copied_from"] = ref.name
        manifest.update(overrides or {})
        return install(dst, target, manifest)
