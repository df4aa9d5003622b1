"""ServeArgs: every setting of `xuetu serve`, validated when built."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from xuetu.errors import XuetuError
from xuetu.runtime.settings import parse_duration


def _total_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 * 1024**3


def _env_list(name: str) -> list[str]:
    """A comma-separated environment variable; empty entries (a trailing comma) are skipped."""
    return [v.strip() for v in os.environ.get(name, "").split(",") if v.strip()]


@dataclass
class ServeArgs:
    host: str = "127.0.0.1"
    """Address to bind; 127.0.0.1 keeps the server private to this machine."""
    port: int = 8000
    models: list[str] = field(default_factory=list)
    """Models to load at start-up and keep loaded."""
    api_keys: list[str] = field(default_factory=list)
    """Bearer keys; when set, every route but /health needs one. XUETU_API_KEYS adds more (comma-separated;
    empty entries are skipped). A key given explicitly must not be empty or have spaces around it."""
    engine: str = "auto"
    """auto, transformers, llama.cpp or vllm."""
    quant: str | None = None
    """Precision for models on the transformers engine: int8, fp16 or bf16 (None: fp32 on CPU, 16-bit on GPU)."""
    keep_alive: str | float = "5m"
    """How long an idle model stays loaded (Ollama's keep_alive)."""
    max_loaded: int = 3
    """Most models resident at once; the least recently used idle one is unloaded to make room."""
    max_memory: int = field(default_factory=lambda: int(_total_memory() * 0.7))
    """Most bytes of weights resident at once."""
    max_queue: int = 64
    """Requests waiting or running per model before new ones get 429."""
    max_batch: int = 16
    """Most sequences decoded together by the transformers engine."""
    max_tokens: int = 4096
    """Upper limit on max_tokens / num_predict for any request."""
    max_body_bytes: int = 8 * 1024 * 1024
    """Largest request body accepted (413 beyond)."""
    max_upload_bytes: int = 64 * 1024 * 1024
    """Largest file uploaded to a knowledge base (PUT /v1/kb/NAME/documents/FILE)."""
    request_timeout: float = 600.0
    """Wall-clock limit per request, in seconds: 504 if it has not answered by then; a stream is ended."""
    cors_origins: list[str] = field(default_factory=list)
    """Browser origins allowed to call the API (--origin/--cors; XUETU_ORIGINS adds more, comma-separated): they
    pass the Origin check and get CORS headers; "*" allows any. Empty: CORS off, and only same-origin, loopback
    and desktop-app pages may send requests (xuetu.serve.origins)."""
    allowed_hosts: list[str] = field(default_factory=list)
    """Host names the server answers to besides loopback and IP addresses (--allowed-host; XUETU_HOSTS adds more);
    "*" allows any, ".example.com" a domain and its subdomains. Checked on keyless and loopback-bound servers."""
    access_log: bool = True
    guard: bool = True
    """Safety guards on every answer (moderation, prompt injection, personal data); --no-guard turns them off."""
    guard_policy: str | None = None
    """A policy YAML: actions per category and API key, rate limits, quotas, audit log (xuetu.safety.policy)."""
    import_dir: str | None = None
    """The one folder whose entries /api/create may name in `from`; None: over HTTP, `from` names stored models only."""
    max_import_bytes: int = 20 * 1024**3
    """Largest entry of the import folder that /api/create copies into the store."""
    allow_overwrite: bool = False
    """Let /api/create and /api/copy replace an existing model when the request also says "overwrite": true."""
    qdrant_url: str | None = None
    """The Qdrant server knowledge bases with store "qdrant" use; None: HTTP clients cannot choose qdrant."""
    kb_locations: list[str] = field(default_factory=list)
    """Folders an HTTP client may name as a knowledge base's `location`; empty: knowledge bases live under XUETU_HOME."""
    max_train_steps: int = 2000
    """Most optimiser steps a fine-tune started over HTTP may take (400 above it; also the default)."""
    max_train_minutes: float = 60
    """Wall time after which a fine-tune started over HTTP is stopped."""

    def __post_init__(self):
        for key in self.api_keys:
            if not key.strip():
                raise XuetuError("an API key cannot be empty: with it, an empty bearer token would be accepted",
                                 "Give a real key, e.g. --api-key \"$(openssl rand -hex 16)\", or no --api-key.")
            if key != key.strip():
                raise XuetuError("an API key cannot start or end with spaces: no client could send it",
                                 "Remove the spaces around the key.")
        self.api_keys = list(dict.fromkeys([*self.api_keys, *_env_list("XUETU_API_KEYS")]))
        self.cors_origins = list(dict.fromkeys([*self.cors_origins, *_env_list("XUETU_ORIGINS")]))
        self.allowed_hosts = list(dict.fromkeys([*self.allowed_hosts, *_env_list("XUETU_HOSTS")]))
        if not (0 < self.port < 65536):
            raise XuetuError(f"port must be 1-65535, got {self.port}")
        if not self.max_train_minutes > 0:
            raise XuetuError("max_train_minutes must be above 0")
        for name in ("max_train_steps", "max_import_bytes", "max_loaded", "max_queue", "max_batch", "max_tokens", "max_body_bytes", "max_upload_bytes", "max_memory"):
            if getattr(self, name) < 1:
                raise XuetuError(f"{name} must be at least 1")
        if not (isinstance(self.request_timeout, (int, float)) and self.request_timeout > 0):
            raise XuetuError(f"request_timeout must be a positive number of seconds, got {self.request_timeout!r}")
        self.keep_alive_seconds = parse_duration(self.keep_alive)
        from xuetu.engines import GGUF_QUANT_HINT, check_quant

        check_quant(self.quant)
        if self.quant is not None and self.engine not in ("auto", "transformers"):
            raise XuetuError(f"--quant {self.quant} applies to the transformers engine, not {self.engine}",
                             GGUF_QUANT_HINT.format(name="NAME") if self.engine.startswith("llama") else
                             "Use --engine transformers or auto.")
