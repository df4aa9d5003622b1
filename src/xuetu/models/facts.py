"""Facts about a stored model, read from its files without loading the weights.

Memory per precision follows the rule the seeds teach: bytes = parameters x bytes per weight,
so 1B parameters take 4 GB at FP32, 2 GB at FP16, 1 GB at INT8 and 0.5 GB at 4 bits.
That is the weights alone; the KV cache and activations come on top.

What is read from the weight files (a GGUF header's vocabulary walk, every safetensors header) is kept under
XUETU_HOME/cache/facts/, keyed by the files' paths, sizes and modification times: /api/tags lists a store after a
restart without opening a weight file, and a file that changes is read again.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from xuetu.home import atomic_write_json, xuetu_home
from xuetu.models.ref import ModelRef

PRECISIONS = [("FP32", 4.0), ("FP16/BF16", 2.0), ("INT8", 1.0), ("Q4", 0.5)]


@dataclass
class ModelFacts:
    name: str
    kind: str
    architecture: str | None = None
    parameters: int | None = None
    context_length: int | None = None
    chat_template: bool = False
    quantization: str | None = None
    base: str | None = None
    source: dict = field(default_factory=dict)
    files: list[tuple[str, int]] = field(default_factory=list)
    disk_bytes: int = 0
    params: dict = field(default_factory=dict)

    def memory(self) -> list[tuple[str, int]]:
        """(precision, bytes the weights need) for each precision."""
        if not self.parameters:
            return []
        return [(label, int(self.parameters * per)) for label, per in PRECISIONS]


def _cached(kind: str, files: list[Path], read) -> dict:
    """read() once per content of `files`, as far as their sizes and modification times tell; kept on disk."""
    stats = []
    for f in files:
        st = Path(f).stat()
        stats.append((str(Path(f).resolve()), st.st_size, st.st_mtime_ns))
    key = hashlib.sha256(json.dumps([kind, stats]).encode()).hexdigest()[:32]
    path = xuetu_home() / "cache" / "facts" / f"{key}.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    found = read()
    try:
        atomic_write_json(path, found)
    except OSError:  # a read-only home still answers, only without the cache
        pass
    return found


def safetensors_parameters(folder: Path) -> int:
    files = sorted(folder.glob("*.safetensors"))
    return _cached("safetensors_parameters", files, lambda: {"parameters": _count_parameters(files)})["parameters"]


def _count_parameters(files: list[Path]) -> int:
    from safetensors import safe_open

    total = 0
    for f in files:
        with safe_open(f, framework="numpy") as st:
            for key in st.keys():
                part = st.get_slice(key)
                if part.get_dtype().startswith(("I", "U", "BOOL")):  # buffers such as position_ids
                    continue
                total += math.prod(part.get_shape())
    return total


def gguf_facts(path: Path) -> dict:
    """Architecture, parameters, context, template and quantisation of a GGUF file, from its header."""
    return dict(_cached("gguf", [Path(path)], lambda: _read_gguf_facts(path)))


def _read_gguf_facts(path: Path) -> dict:
    from gguf import LlamaFileType

    from xuetu.models.gguf_header import read_header

    header = read_header(path)
    meta = header.fields
    arch = meta.get("general.architecture")
    ftype = meta.get("general.file_type")
    try:
        quant = LlamaFileType(ftype).name.removeprefix("MOSTLY_") if ftype is not None else None
    except ValueError:
        quant = str(ftype)
    return {
        "architecture": arch,
        "parameters": sum(t.n_elements for t in header.tensors),
        "context_length": meta.get(f"{arch}.context_length"),
        "chat_template": meta.get("tokenizer.chat_template") is not None,
        "quantization": quant,
    }


def _hf_facts(folder: Path) -> dict:
    cfg = json.loads((folder / "config.json").read_text(encoding="utf-8")) if (folder / "config.json").is_file() else {}
    arch = (cfg.get("architectures") or [cfg.get("model_type")])[0]
    from xuetu.models.sources import has_chat_template

    return {
        "architecture": arch,
        "parameters": safetensors_parameters(folder) or None,
        "context_length": cfg.get("max_position_embeddings") or cfg.get("n_positions"),
        "chat_template": has_chat_template(folder),
        "quantization": cfg.get("torch_dtype") or cfg.get("dtype"),
    }


def describe(ref: ModelRef) -> ModelFacts:
    from xuetu.models import resolve

    facts = ModelFacts(name=ref.name, kind=ref.kind, base=ref.base, source=ref.source, params=ref.params)
    facts.files = sorted((rel, meta["size"]) for rel, meta in ref.manifest.get("files", {}).items())
    facts.disk_bytes = sum(size for _, size in facts.files)
    base = resolve(ref.base) if ref.base else ref
    if base.hf_dir is not None:
        found = _hf_facts(base.hf_dir)
    elif base.gguf_file is not None:
        found = gguf_facts(base.gguf_file)
    else:
        found = {}
    if base.gguf_file is not None and base.hf_dir is not None:
        found["quantization"] = f"{gguf_facts(base.gguf_file)['quantization']} (gguf), {found['quantization']} (hf)"
    if ref.adapter_dir is not None and found.get("parameters"):
        found["parameters"] += safetensors_parameters(ref.adapter_dir)
    for key, value in found.items():
        setattr(facts, key, value)
    return facts


def human_bytes(n: float) -> str:
    """Decimal units (1 GB = 10^9 bytes), the units the seeds use."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


def human_count(n: int | None) -> str:
    if not n:
        return "unknown"
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)
