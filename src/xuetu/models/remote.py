"""Remote models: a store entry that names a model behind an OpenAI-compatible API instead of holding weights.

    ref = create_remote("deepseek:chat", preset="deepseek", api_model="deepseek-chat")
    ref.remote            # Remote(url=..., model="deepseek-chat", key_env="DEEPSEEK_API_KEY", ...)
    remote_of(ref).key()  # read from the environment now; never stored, logged or reported

The manifest holds the URL, the provider's model name, the *name* of the environment variable with the key,
and the price per million tokens when the user gives one. The key itself is never written anywhere.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass

from xuetu.errors import BadInput, Conflict, XuetuError
from xuetu.models.ref import ModelRef


@dataclass(frozen=True)
class Preset:
    label: str
    url: str
    key_env: str | None
    pricing: str | None = None
    """Where the provider publishes its prices (xuetu ships none: they change; set yours with --price-in/out)."""
    embedding_model: str | None = None
    """The provider's embedding model, for `--embedder`."""
    embed_batch: int = 32
    """Most texts the provider embeds in one request."""


PRESETS: dict[str, Preset] = {
    "deepseek": Preset("DeepSeek", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY",
                       "https://api-docs.deepseek.com/quick_start/pricing"),
    "dashscope": Preset("DashScope (通义千问)", "https://dashscope.aliyuncs.com/compatible-mode/v1", "DASHSCOPE_API_KEY",
                        "https://help.aliyun.com/zh/model-studio/models", "text-embedding-v3", 10),
    "moonshot": Preset("Moonshot (Kimi)", "https://api.moonshot.cn/v1", "MOONSHOT_API_KEY",
                       "https://platform.moonshot.cn/docs/pricing/chat"),
    "zhipu": Preset("Zhipu (智谱 GLM)", "https://open.bigmodel.cn/api/paas/v4", "ZHIPUAI_API_KEY",
                    "https://open.bigmodel.cn/pricing", "embedding-3"),
    "siliconflow": Preset("SiliconFlow (硅基流动)", "https://api.siliconflow.cn/v1", "SILICONFLOW_API_KEY",
                          "https://siliconflow.cn/pricing", "BAAI/bge-m3"),
    "openai": Preset("OpenAI", "https://api.openai.com/v1", "OPENAI_API_KEY", "https://openai.com/api/pricing/",
                     "text-embedding-3-small"),
    "ollama": Preset("Ollama on this machine", "http://127.0.0.1:11434/v1", None),
    "vllm": Preset("vLLM on this machine", "http://127.0.0.1:8000/v1", None),
    "xuetu": Preset("another xuetu serve", "http://127.0.0.1:8000/v1", "XUETU_API_KEY"),
}
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


@dataclass(frozen=True)
class Remote:
    url: str
    """The API's base URL, ending in /v1 (or the provider's equivalent)."""
    model: str
    """The provider's name for the model."""
    key_env: str | None = None
    """The environment variable that holds the key (None: the server needs none)."""
    provider: str = "custom"
    price_in: float | None = None
    """Price per million prompt tokens, in `currency`, as the user gave it."""
    price_out: float | None = None
    currency: str = "USD"
    context_length: int | None = None
    timeout: float = 120.0
    """Seconds to wait for the first byte and between chunks."""
    retries: int = 3
    """Retries on 429, 5xx and dropped connections, before the answer's first byte."""
    batch: int = 32
    """Texts per embedding request (an embedding model's provider limits it)."""

    @property
    def label(self) -> str:
        preset = PRESETS.get(self.provider)
        return preset.label if preset else self.url.split("//", 1)[-1].split("/", 1)[0]

    def key(self) -> str | None:
        """The API key, read from the environment at use time."""
        if not self.key_env:
            return None
        value = os.environ.get(self.key_env, "").strip()
        if not value:
            raise XuetuError(f"{self.label} needs an API key, and {self.key_env} is not set",
                             f"Set it in the environment that runs xuetu: export {self.key_env}=sk-...")
        return value

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        """What a call cost, from the price the user gave (None when no price is set)."""
        if self.price_in is None and self.price_out is None:
            return None
        return (prompt_tokens * (self.price_in or 0) + completion_tokens * (self.price_out or 0)) / 1e6

    def price_text(self) -> str:
        if self.price_in is None and self.price_out is None:
            preset = PRESETS.get(self.provider)
            where = f" (the provider's prices: {preset.pricing})" if preset and preset.pricing else ""
            return "not set; give it with --price-in/--price-out" + where
        return f"{self.price_in or 0:g} in, {self.price_out or 0:g} out {self.currency} per million tokens"


def remote_of(ref: ModelRef) -> Remote | None:
    """The remote a store entry names, or None for a model with weights."""
    spec = ref.manifest.get("remote")
    if not isinstance(spec, dict):
        return None
    known = Remote.__dataclass_fields__
    return Remote(**{k: v for k, v in spec.items() if k in known})


def _check_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if not re.match(r"^https?://[^\s/]+", url):
        raise BadInput(f"--api must be an http(s) URL, got {url!r}",
                       "For example https://api.deepseek.com/v1, or http://127.0.0.1:11434/v1 for Ollama.",
                       param="api")
    if url.endswith("/chat/completions"):
        url = url[: -len("/chat/completions")]
    return url


def build(preset: str | None = None, url: str | None = None, api_model: str | None = None,
          key_env: str | None = None, kind: str = "chat", **extra) -> Remote:
    """A Remote from a preset and/or explicit values (explicit ones win), checked."""
    if preset is not None and preset not in PRESETS:
        raise BadInput(f"unknown provider preset {preset!r}", f"Choose one of: {', '.join(PRESETS)}.", param="preset")
    base = PRESETS.get(preset) if preset else None
    url = url or (base.url if base else None)
    if not url:
        raise BadInput("a remote model needs --api URL or --preset NAME",
                       f"Presets: {', '.join(PRESETS)}; or any OpenAI-compatible URL ending in /v1.", param="api")
    if not api_model and kind == "embedding" and base and base.embedding_model:
        api_model = base.embedding_model
    if not api_model:
        raise BadInput("a remote model needs --api-model, the provider's name for it",
                       "For example deepseek-chat, qwen-plus, moonshot-v1-8k, glm-4-flash.", param="api_model")
    key_env = key_env if key_env is not None else (base.key_env if base else None)
    if key_env and not ENV_NAME.match(key_env):
        raise BadInput("--key-env takes the NAME of an environment variable (letters, digits and _), not the key "
                       "itself; what was given is not repeated here",
                       "Put the key in the environment (export DEEPSEEK_API_KEY=sk-...) and pass its name: "
                       "the key is never stored.", param="key_env")
    if extra.get("timeout") is not None and not (isinstance(extra["timeout"], (int, float)) and extra["timeout"] > 0):
        raise BadInput("timeout must be a number of seconds > 0", param="timeout")
    for name, low in (("context_length", 1), ("batch", 1), ("retries", 0)):
        value = extra.get(name)
        if value is not None and not (isinstance(value, int) and not isinstance(value, bool) and value >= low):
            raise BadInput(f"{name} must be an integer >= {low}, got {value!r}", param=name)
    for name in ("price_in", "price_out"):
        if extra.get(name) is not None and not (isinstance(extra[name], (int, float)) and extra[name] >= 0):
            raise BadInput(f"{name} must be a number >= 0 (per million tokens)", param=name)
    fields = {k: v for k, v in extra.items() if v is not None}
    if base and kind == "embedding":
        fields.setdefault("batch", base.embed_batch)
    return Remote(url=_check_url(url), model=api_model, key_env=key_env or None, provider=preset or "custom",
                  **fields)


def create_remote(name: str, kind: str = "chat", system: str | None = None, params: dict | None = None,
                  **spec) -> ModelRef:
    """Add a remote model to the store: a manifest, no files."""
    from xuetu.models import store
    from xuetu.models.names import parse_name

    parse_name(name)
    existing = store.get(name)
    if existing is not None and existing.remote is None:  # never trade a model's weights for a pointer
        raise Conflict(f"{existing.name} is a model with weights in the store",
                       f"Pick another name, or remove it first with `xuetu rm {existing.name}`.")
    if kind not in ("chat", "embedding"):
        raise BadInput(f"kind must be chat or embedding, got {kind!r}", param="kind")
    remote = build(kind=kind, **spec)
    manifest = {"kind": kind, "remote": asdict(remote),
                "source": {"type": "remote", "id": f"{remote.provider}:{remote.model}", "url": remote.url}}
    if system:
        manifest["system"] = system
    if params:
        manifest["params"] = params
    with store.staging() as tmp:
        folder = tmp / "m"
        folder.mkdir()
        return store.install(name, folder, manifest)
