"""Ollama API request models and reply shapes, following Ollama's docs/api.md.

Durations are nanoseconds; streaming is on unless "stream": false; names are name:tag.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from xuetu.engines.base import MAX_STOP_CHARS, MAX_STOPS


class _Request(BaseModel):
    model_config = ConfigDict(extra="allow")


# Constraints live on the fields, so /openapi.json tells clients (and fuzzers) what a handler accepts.
ModelName = Annotated[str, Field(max_length=256, examples=["smollm2:135m"])]
NonEmpty = Annotated[str, Field(min_length=1)]
StopString = Annotated[str, Field(min_length=1, max_length=MAX_STOP_CHARS)]


class Options(_Request):
    """The subset of Ollama's runtime options that xuetu applies; the rest are accepted and ignored."""

    temperature: float | None = Field(None, ge=0)
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = Field(None, ge=0)
    num_predict: int | None = None  # < 1: as many as the server's --max-tokens allows
    seed: int | None = Field(None, ge=-2**63, le=2**64 - 1)  # what torch and llama.cpp take
    stop: list[StopString] | None = Field(None, max_length=MAX_STOPS)
    repeat_penalty: float | None = Field(None, gt=0)


class _Named(_Request):
    model: ModelName = ""  # required: here or as "name"
    name: ModelName | None = None  # older clients send "name"

    @model_validator(mode="after")
    def _model_from_name(self):
        if not self.model and self.name:
            self.model = self.name
        return self


class CallFunction(_Request):
    name: str = Field(min_length=1, max_length=64)
    arguments: dict[str, Any] = Field(default_factory=dict)  # an object, as Ollama sends it


class ToolCall(_Request):
    id: str | None = None
    function: CallFunction


class Message(_Request):
    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    images: list[str] | None = None
    tool_calls: list[ToolCall] | None = Field(None, max_length=128)  # on assistant turns
    tool_name: str | None = None  # on tool turns: the function whose result this is
    name: str | None = None  # older clients' spelling of tool_name

    def as_message(self, i: int) -> dict:
        """The message in the generation service's (OpenAI's) shape; calls get ids when they have none."""
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            out["tool_calls"] = [{"id": c.id or f"call_{i}_{j}", "type": "function",
                                  "function": {"name": c.function.name, "arguments": c.function.arguments}}
                                 for j, c in enumerate(self.tool_calls)]
        if self.role == "tool" and (self.tool_name or self.name):
            out["name"] = self.tool_name or self.name
        return out


def tool_calls(calls: list) -> list[dict]:
    """Calls as Ollama returns them: arguments as objects."""
    return [{"id": c.id, "function": {"index": i, "name": c.name, "arguments": c.arguments}}
            for i, c in enumerate(calls)]


class GenerateRequest(_Named):
    prompt: str | None = None
    suffix: str | None = None
    images: list[str] | None = None
    format: Literal["json"] | dict | None = None
    options: Options | None = None
    system: str | None = None
    template: str | None = None
    stream: bool = True
    raw: bool = False
    keep_alive: str | float | None = None


class ChatRequest(_Named):
    messages: list[Message] = Field(default_factory=list)
    tools: list[dict] | None = None  # checked by xuetu.tools.spec: 400 with the tool at fault
    tool_choice: Literal["none", "auto", "required"] | dict | None = None  # xuetu extension (OpenAI's)
    format: Literal["json"] | dict | None = None
    options: Options | None = None
    stream: bool = True
    keep_alive: str | float | None = None
    kb: str | None = None  # xuetu extension: answer from this knowledge base, with citations


class EmbedRequest(_Named):
    input: str | Annotated[list[NonEmpty], Field(min_length=1, max_length=2048)] = ""  # required, non-empty
    truncate: bool = True
    options: Options | None = None
    keep_alive: str | float | None = None
    dimensions: int | None = Field(None, ge=1)


class LegacyEmbeddingsRequest(_Named):
    prompt: str = ""
    keep_alive: str | float | None = None


class PullRequest(_Named):
    insecure: bool = False
    stream: bool = True


class CreateRequest(_Named):
    from_: str | None = Field(None, alias="from")
    system: str | None = None
    parameters: dict[str, Any] | None = None
    template: str | None = None
    files: dict | None = None
    adapters: dict | None = None
    quantize: str | None = None
    stream: bool = True
    overwrite: bool = False  # xuetu extension: replace an existing model (the server must allow it)


class CopyRequest(_Request):
    source: ModelName
    destination: ModelName
    overwrite: bool = False  # xuetu extension, as in CreateRequest


class ShowRequest(_Named):
    verbose: bool = False


class DeleteRequest(_Named):
    pass


def now() -> str:
    """RFC 3339 with nanosecond precision, as Ollama writes created_at."""
    t = dt.datetime.now(dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond:06d}000Z"


def ns(seconds: float) -> int:
    return max(int(seconds * 1e9), 0)


def final_fields(timing, reason: str | None) -> dict:
    return {"done": True, "done_reason": reason or "stop", "total_duration": ns(timing.total),
            "load_duration": ns(timing.load), "prompt_eval_count": timing.prompt_tokens,
            "prompt_eval_duration": ns(timing.prompt_eval), "eval_count": timing.completion_tokens,
            "eval_duration": ns(timing.eval)}


def digest(ref) -> str:
    return hashlib.sha256((ref.path / "manifest.json").read_bytes()).hexdigest()


def details(ref, facts) -> dict:
    if (remote := ref.remote) is not None:
        return {"parent_model": "", "format": "remote", "family": remote.provider, "families": [remote.provider],
                "parameter_size": "", "quantization_level": ""}
    family = (facts.architecture or "").lower().removesuffix("forcausallm").removesuffix("model") or "unknown"
    fmt = "gguf" if ref.gguf_file is not None else "safetensors"
    quant = (facts.quantization or "").split(" ")[0] if facts.quantization else ""
    from xuetu.models.facts import human_count

    return {"parent_model": ref.base or "", "format": fmt, "family": family, "families": [family],
            "parameter_size": human_count(facts.parameters), "quantization_level": quant.upper()}


def remote_fields(ref) -> dict:
    """Where a remote model runs, in the fields Ollama gives its cloud models (remote_model, remote_host)."""
    if (remote := ref.remote) is None:
        return {}
    return {"remote_model": remote.model, "remote_host": remote.url}


def capabilities(ref) -> list[str]:
    return ["embedding"] if ref.kind == "embedding" else ["completion"]


def modified_at(ref) -> str:
    created = ref.manifest.get("created_at") or "1970-01-01T00:00:00+00:00"
    return dt.datetime.fromisoformat(created).isoformat()
