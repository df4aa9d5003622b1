"""`xuetu create NAME -f Modelfile`: a new store model from an Ollama Modelfile, as `ollama create -f` makes one.

    create_from_modelfile("facts:q8", "Modelfile")   # FROM ./model.gguf (or a stored model), ADAPTER, SYSTEM, PARAMETER

The GGUF files are linked into the store, not copied; the Modelfile's SYSTEM, PARAMETERs and TEMPLATE go
into the new model's manifest. (`xuetu create NAME --from PATH`, for a folder or a .gguf, is
xuetu.models.create.)
"""

from __future__ import annotations

from pathlib import Path

from xuetu.errors import XuetuError
from xuetu.export.staging import check_name_free, link_file


def create_from_modelfile(name: str, path: Path, extra: dict | None = None):
    """Build a store model from an Ollama Modelfile: FROM a GGUF (or a stored model), ADAPTER, SYSTEM, PARAMETER."""
    from xuetu import models
    from xuetu.export import modelfile
    from xuetu.models import store
    from xuetu.models.sources import require_gguf

    path = Path(path)
    mf = modelfile.read(path)
    here = path.parent if path.is_file() else path
    if len(mf.adapters) > 1:
        raise XuetuError("the Modelfile names several ADAPTERs", "xuetu applies one LoRA adapter per model.")
    check_name_free(name)
    manifest: dict = {"kind": "chat", "params": {}, "source": {"type": "modelfile", "id": str(path.resolve())}}
    with store.staging() as tmp:
        src = (here / mf.from_).expanduser()
        if mf.from_.endswith(".gguf") or src.is_file():
            if not src.is_file():
                raise XuetuError(f"FROM {mf.from_}: {src} does not exist", "Give the GGUF's path relative to the Modelfile.")
            require_gguf(src)
            link_file(src, tmp / "gguf" / "model.gguf")
        else:
            base = models.resolve(mf.from_)
            if base.gguf_file is None:
                raise XuetuError(f"FROM {mf.from_}: that model has no GGUF file",
                                 f"Export one first: xuetu export {base.name} --format gguf")
            link_file(base.gguf_file, tmp / "gguf" / "model.gguf")
            manifest["kind"], manifest["params"] = base.kind, base.params
        formats = {"gguf": "gguf/model.gguf"}
        if mf.adapters:
            adapter = (here / mf.adapters[0]).expanduser()
            if not adapter.is_file():
                raise XuetuError(f"ADAPTER {mf.adapters[0]}: {adapter} does not exist",
                                 "Give a LoRA adapter in GGUF, relative to the Modelfile.")
            require_gguf(adapter)
            link_file(adapter, tmp / "gguf" / "adapter.gguf")
            formats["gguf-lora"] = "gguf/adapter.gguf"
        manifest["formats"] = formats
        manifest["params"] = {**manifest["params"], **mf.params()}
        if mf.system is not None:
            manifest["system"] = mf.system
        if mf.template is not None:
            manifest["ollama_template"] = mf.template
        manifest.update(extra or {})
        return store.install(name, tmp, manifest)
