"""The server's import folder: the one place on disk an HTTP client may name as a model's source.

`xuetu serve --import-dir DIR` lets `/api/create` take `"from": "ENTRY"`, a file or folder directly inside DIR.
The entry is confined to DIR (no absolute paths, no `..`, no symlink that leads out) and capped in size. Errors
name the entry as the client wrote it, never a resolved server path.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from xuetu.errors import InvalidName, NotAllowed, XuetuError

HTTP_FROM_HINT = ("Over HTTP, `from` names a model in the store or an entry of the server's import folder "
                  "(xuetu serve --import-dir DIR); for other local folders run `xuetu create` on the server.")


def import_entry(import_dir: str | Path | None, entry: str, max_bytes: int) -> Path:
    """The path of `entry` inside `import_dir`, checked: confined, existing, at most max_bytes."""
    if import_dir is None:
        raise NotAllowed(f"{entry!r} is not a model in the store, and this server has no import folder", HTTP_FROM_HINT)
    rel = PurePosixPath(entry.replace("\\", "/"))
    if rel.is_absolute() or entry.startswith("~") or ".." in rel.parts or not rel.parts or ":" in entry:
        raise NotAllowed(f"{entry!r} is not an entry name: over HTTP, paths are not accepted", HTTP_FROM_HINT)
    root = Path(import_dir).resolve()
    path = (root / rel).resolve()
    if not path.is_relative_to(root) or path == root:
        raise NotAllowed(f"{entry!r} leads out of the import folder", HTTP_FROM_HINT)
    if not path.exists():
        raise XuetuError(f"{entry!r} is neither a model in the store nor an entry of the import folder",
                         "See the stored models with GET /api/tags.")
    for item in [path, *(path.rglob("*") if path.is_dir() else [])]:
        if item.is_symlink() and not item.resolve().is_relative_to(root):
            raise NotAllowed(f"{entry!r} holds a link that leads out of the import folder", HTTP_FROM_HINT)
    size = path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    if size > max_bytes:
        raise XuetuError(f"{entry!r} holds {size} bytes, more than the server's import cap of {max_bytes}",
                         "Ask the operator to raise --max-import.")
    return path


def create_from_request(name: str, source: str, overrides: dict, params: dict | None, import_dir: str | None,
                        max_bytes: int, overwrite: bool = False):
    """What /api/create does: copy a stored model, or add an import-folder entry, as `name`.

    An existing `name` is a Conflict unless `overwrite` (which the caller allows only when the server does).
    """
    from xuetu import models
    from xuetu.errors import Conflict, ModelNotFound
    from xuetu.models import store

    models.parse_name(name)
    if (existing := store.get(name)) is not None and not overwrite:
        raise Conflict(f"model {existing.name!r} already exists",
                       'Pick another name, or send "overwrite": true to a server started with --allow-overwrite.')
    try:
        src = models.resolve(source)
    except ModelNotFound as e:
        if import_dir is None:
            raise ModelNotFound(e.message, HTTP_FROM_HINT) from None
        src = None
    except XuetuError:  # not a model name at all: perhaps an import entry
        src = None
    if src is not None:
        return store.copy(src.name, name, {**overrides, "params": {**src.params, **(params or {})}}, overwrite)
    path = import_entry(import_dir, source, max_bytes)
    try:
        return models.create(name, path, None, False, {**overrides, **({"params": params} if params else {})})
    except XuetuError as e:  # its message names the resolved server path; the client wrote only the entry
        raise XuetuError(f"import entry {source!r} is not a model xuetu can read",
                         "Put a Hugging Face folder, a PEFT adapter folder or a .gguf file there.") from e


def check_pull_name(name: str) -> None:
    """A name /api/pull may fetch: an alias or a hub id (org/repo), never a server path or a URL."""
    from xuetu.models import aliases, names
    from xuetu.models import _REPO_ID, _strip_hub_prefix

    raw = str(name).strip()
    if not raw:
        raise InvalidName("model is required", "Name a model, e.g. smollm2:135m or HuggingFaceTB/SmolLM2-135M.")
    if raw.startswith((".", "/", "~", "\\")) or "://" in raw or ".." in raw or raw.endswith(".gguf"):
        raise InvalidName(f"{raw!r} is not a model name: over HTTP, /api/pull takes names, not paths or URLs",
                         "Name a model (smollm2:135m) or a hub repository (org/name); local files: `xuetu create` "
                         "on the server.")
    bare = _strip_hub_prefix(raw)
    if aliases.lookup(bare) or _REPO_ID.match(bare):
        return
    names.parse_name(bare)  # raises InvalidName with what is wrong
