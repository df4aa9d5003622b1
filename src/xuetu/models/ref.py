"""ModelRef: a model in the store, as the rest of xuetu sees it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ModelRef:
    name: str
    """Canonical store name, `[namespace/]model:tag`."""
    path: Path
    """The model's folder in the store."""
    manifest: dict

    def _fmt(self, key: str) -> Path | None:
        rel = self.manifest.get("formats", {}).get(key)
        return self.path / rel if rel else None

    @property
    def hf_dir(self) -> Path | None:
        """Hugging Face folder (config.json + safetensors + tokenizer), for training and transformers."""
        return self._fmt("hf")

    @property
    def gguf_file(self) -> Path | None:
        """GGUF file, for the llama.cpp engine."""
        return self._fmt("gguf")

    @property
    def gguf_adapter(self) -> Path | None:
        """LoRA adapter in GGUF, applied by llama.cpp over `gguf_file` (Ollama's ADAPTER)."""
        return self._fmt("gguf-lora")

    @property
    def adapter_dir(self) -> Path | None:
        """PEFT adapter folder; the weights it modifies are those of `base`."""
        return self._fmt("adapter")

    @property
    def adapter_type(self) -> str | None:
        """PEFT type of the adapter (LORA, PROMPT_TUNING, PREFIX_TUNING, …), or None."""
        import json

        cfg = self.adapter_dir / "adapter_config.json" if self.adapter_dir else None
        if cfg is None or not cfg.is_file():
            return None
        return json.loads(cfg.read_text(encoding="utf-8")).get("peft_type")

    @property
    def prompt_learning(self) -> bool:
        """Prompt or prefix tuning: virtual tokens, which PEFT's own generate must handle."""
        return self.adapter_type in ("PROMPT_TUNING", "PREFIX_TUNING", "P_TUNING")

    @property
    def base(self) -> str | None:
        return self.manifest.get("base")

    @property
    def remote(self):
        """The API a remote model runs behind (xuetu.models.remote.Remote), or None for a model with weights."""
        from xuetu.models.remote import remote_of

        return remote_of(self)

    @property
    def kind(self) -> str:
        return self.manifest.get("kind", "chat")

    @property
    def params(self) -> dict:
        """Default generation parameters that ship with the model."""
        return dict(self.manifest.get("params") or {})

    @property
    def system(self) -> str | None:
        """Default system prompt, used when a conversation brings none (like Ollama's SYSTEM)."""
        return self.manifest.get("system")

    @property
    def source(self) -> dict:
        return dict(self.manifest.get("source") or {})

    def problems(self, deep: bool = False) -> list[str]:
        """What is wrong with the files on disk compared with the manifest (empty when usable)."""
        from xuetu.models.checksums import sha256_file

        found = []
        for rel, meta in sorted(self.manifest.get("files", {}).items()):
            p = self.path / rel
            if not p.is_file():
                found.append(f"missing file {rel}")
            elif p.stat().st_size != meta["size"]:
                found.append(f"{rel} is {p.stat().st_size} bytes, expected {meta['size']}")
            elif deep and sha256_file(p) != meta["sha256"]:
                found.append(f"{rel} fails its sha256 checksum")
        return found
