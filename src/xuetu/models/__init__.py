"""Models: resolve names and pull them into the store. (Loading one on an engine is xuetu.engines.load.)

    ref = resolve("smollm2:135m")      # ModelRef of a stored model
    ref = pull("qwen2.5:0.5b")         # alias, hub repo id, local path, or the embedded default
"""

from __future__ import annotations

import re
from pathlib import Path

from xuetu.errors import ModelNotFound, ModelNotPulled, XuetuError
from xuetu.models import aliases, store
from xuetu.models.names import closest, parse_name
from xuetu.models.ref import ModelRef

__all__ = ["ModelRef", "resolve", "pull", "create", "list_models"]

_HUB_PREFIXES = ("https://huggingface.co/", "huggingface.co/", "hf.co/", "https://modelscope.cn/models/",
                 "modelscope.cn/models/", "https://www.modelscope.cn/models/")
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


def list_models() -> list[ModelRef]:
    return store.list_models()


def _strip_hub_prefix(name: str) -> str:
    for prefix in _HUB_PREFIXES:
        if name.lower().startswith(prefix):
            return name[len(prefix):].strip("/")
    return name


def _not_found(name: str) -> ModelNotFound:
    if hit := aliases.lookup(name):  # a name xuetu knows, just not in this store yet
        return ModelNotPulled(f"model {name!r} is not pulled yet",
                             f"Pull it first: `xuetu pull {hit[0]}` (or POST /api/pull with the name).", name=name)
    known = sorted({r.name for r in store.list_models()} | set(aliases.ALIASES))
    near = [n for n in closest(name, known) if n != name]
    hint = f"Did you mean {' or '.join(near)}? " if near else ""
    return ModelNotFound(f"model {name!r} not found", hint + "See `xuetu list`, or pull one with `xuetu pull NAME`.",
                         name=name, suggestions=near)


def _embedded(hit: tuple[str, aliases.Alias] | None) -> bool:
    """True when the alias's weights ship in an installed package: such a model needs no pull."""
    from xuetu.models import sources

    return bool(hit and hit[1].embedded and sources.embedded_files(hit[1].embedded) is not None)


def resolve(name: str, pull_missing: bool = False, progress: bool = True) -> ModelRef:
    """The stored model a user means by `name` (store name, alias, or hub id)."""
    if isinstance(name, ModelRef):
        return name
    name = _strip_hub_prefix(str(name).strip())
    if ref := store.get(name):
        return ref
    hit = aliases.lookup(name)
    if hit and (ref := store.get(hit[0])):
        return ref
    if _embedded(hit):  # no network, nothing to ask: stored on first use
        return pull(hit[0], progress=progress)
    if pull_missing and (hit or _REPO_ID.match(name)):
        return pull(name, progress=progress)
    raise _not_found(name)


def pull(name: str, progress: bool = True, hub: str | None = None, report=None) -> ModelRef:
    """Bring a model into the store; returns it. Pulling a stored model again updates it.

    `report(status, total=None, completed=None)`, if given, is called as the pull goes (the server
    turns it into Ollama's progress lines).
    """
    from xuetu.models import hub as hubs
    from xuetu.models import sources

    raw = str(name).strip()
    path = Path(raw).expanduser()
    if raw.startswith((".", "/", "~")) or path.suffix == ".gguf" or (path.exists() and "/" in raw):
        if not path.exists():
            raise XuetuError(f"{path} does not exist", "Give an existing folder or .gguf file.")
        return sources.create_from_path(sources.name_from_path(path), path, progress=progress)
    raw = _strip_hub_prefix(raw)
    hub_kind = hub or hubs.hub_name()
    if hit := aliases.lookup(raw):
        canonical, alias = hit
        files = sources.embedded_files(alias.embedded) if alias.embedded else None
        if files is not None:
            existing = store.get(canonical)
            if existing is not None and not existing.problems():
                return existing
            return sources.pull_embedded(canonical, alias, files, progress=progress, report=report)
        repo = alias.modelscope if hub_kind == "modelscope" else alias.hf
        if repo is None:
            raise XuetuError(f"{canonical} has no {hub_kind} mirror", "Try XUETU_HUB=huggingface.")
        return sources.pull_hub(canonical, repo, alias, hub_kind, progress=progress, report=report)
    if _REPO_ID.match(raw):
        return sources.pull_hub(str(parse_name(raw)), raw, None, hub_kind, progress=progress, report=report)
    parse_name(raw)  # a malformed name gets the validation error, not 'not found'
    raise _not_found(raw)


def create(name: str, path: str | Path, base: str | None = None, progress: bool = True,
           overrides: dict | None = None) -> ModelRef:
    """Add a local Hugging Face folder, PEFT adapter folder or .gguf file to the store as `name`.

    `overrides` sets manifest entries such as `params` (default generation settings) or `system`.
    """
    from xuetu.models import sources

    parse_name(name)
    return sources.create_from_path(name, Path(path), base=base, progress=progress, overrides=overrides)

