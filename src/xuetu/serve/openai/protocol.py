"""OpenAI API request and response models, in the order of the official spec.

Fields marked "xuetu extension" are not in OpenAI's spec. Accepted-but-ignored spec fields are
listed so clients that send them are not refused.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from xuetu.engines.base import MAX_STOP_CHARS, MAX_STOPS
from xuetu.errors import BadInput


class _Request(BaseModel):
    model_config = ConfigDict(extra="allow")  # unknown fields from newer clients are ignored, not refused


# Constraints live on the fields, so /openapi.json tells clients (and fuzzers) what a handler accepts.
ModelName = Annotated[str, Field(min_length=1, max_length=256, examples=["smollm2:135m"])]
NonEmpty = Annotated[str, Field(min_length=1)]
StopString = Annotated[str, Field(min_length=1, max_length=MAX_STOP_CHARS)]
Stop = StopString | Annotated[list[StopString], Field(max_length=MAX_STOPS)]
Seed = Annotated[int, Field(ge=-2**63, le=2**64 - 1)]  # what torch and llama.cpp take


class ContentPart(BaseModel):
    type: Literal["text"]  # xuetu's models read text
    text: str | None = None


class FunctionCall(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    arguments: str = "{}"  # JSON text, as OpenAI sends it


class ToolCallIn(BaseModel):
    id: str = Field(min_length=1, max_length=256)
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(BaseModel):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCallIn] | None = Field(None, max_length=128)  # on assistant turns
    tool_call_id: str | None = None  # on tool turns: the call this result answers

    def text(self) -> str:
        if self.content is None or isinstance(self.content, str):
            return self.content or ""
        return "".join(p.text or "" for p in self.content)

    def as_message(self) -> dict:
        """The message as the generation service takes it."""
        out: dict = {"role": "system" if self.role == "developer" else self.role, "content": self.text()}
        if self.tool_calls:
            out["tool_calls"] = [c.model_dump() for c in self.tool_calls]
        if self.role == "tool":
            if self.tool_call_id is None:
                raise BadInput("a tool message needs tool_call_id: the id of the call it answers", param="messages")
            out["tool_call_id"] = self.tool_call_id
        if self.name:
            out["name"] = self.name
        return out


class StreamOptions(BaseModel):
    include_usage: bool = False


class ResponseFormat(BaseModel):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: dict | None = None


class _Sampling(_Request):
    frequency_penalty: float | None = Field(None, ge=-2, le=2)  # accepted, not applied
    max_tokens: int | None = Field(None, ge=1)  # capped by the server's --max-tokens
    n: int = Field(1, ge=1, le=1)  # one choice per request
    presence_penalty: float | None = Field(None, ge=-2, le=2)  # accepted, not applied
    seed: Seed | None = None
    stop: Stop | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    user: str | None = None
    top_k: int | None = Field(None, ge=0)  # xuetu extension
    repeat_penalty: float | None = Field(None, gt=0, le=10)  # xuetu extension
    keep_alive: str | float | None = None  # xuetu extension (Ollama's keep_alive)

    @field_validator("stop")
    @classmethod
    def _stop_list(cls, v):
        return [v] if isinstance(v, str) else v  # the limits are Stop's, declared in /openapi.json


class ChatCompletionRequest(_Sampling):
    messages: list[ChatMessage] = Field(min_length=1)
    model: ModelName
    logprobs: Literal[False] | None = None  # not supported
    max_completion_tokens: int | None = Field(None, ge=1)
    response_format: ResponseFormat | None = None
    tools: list[dict] | None = None  # checked by xuetu.tools.spec: 400 with the tool at fault
    tool_choice: Literal["none", "auto", "required"] | dict | None = None
    parallel_tool_calls: bool | None = None
    kb: str | None = None  # xuetu extension: answer from this knowledge base, with citations


class CompletionRequest(_Sampling):
    model: ModelName
    prompt: str | Annotated[list[str], Field(min_length=1, max_length=1)]  # one prompt per request
    echo: bool = False
    logprobs: None = None  # not supported
    suffix: Literal[""] | None = None  # not supported


class EmbeddingRequest(_Request):
    input: NonEmpty | Annotated[list[NonEmpty], Field(min_length=1, max_length=2048)]
    model: ModelName
    dimensions: int | None = Field(None, ge=1)
    encoding_format: Literal["float", "base64"] = "float"
    user: str | None = None


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def usage(prompt: int, completion: int) -> dict[str, Any]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


class ChatIds:
    """One id and timestamp per completion, shared by all its chunks."""

    def __init__(self, model: str, prefix: str = "chatcmpl"):
        self.id, self.created, self.model = _id(prefix), int(time.time()), model


def chat_completion(ids: ChatIds, text: str, finish: str, prompt: int, completion: int,
                    calls: list | None = None) -> dict:
    message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
    if calls:
        message.update(content=text or None, tool_calls=[c.as_openai() for c in calls])
    return {"id": ids.id, "object": "chat.completion", "created": ids.created, "model": ids.model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
            "usage": usage(prompt, completion), "system_fingerprint": "xuetu"}


ARGUMENT_PIECE = 32
"""Characters of a call's arguments per streamed delta."""


def tool_call_deltas(calls: list) -> list[dict]:
    """Stream deltas for the calls, as OpenAI sends them: index, id, type and name first (arguments empty), then
    the arguments in pieces; the SDK's stream accumulator joins them back."""
    deltas = []
    for i, call in enumerate(calls):
        deltas.append({"tool_calls": [{"index": i, "id": call.id, "type": "function",
                                       "function": {"name": call.name, "arguments": ""}}]})
        args = call.arguments_json()
        deltas += [{"tool_calls": [{"index": i, "function": {"arguments": args[j:j + ARGUMENT_PIECE]}}]}
                   for j in range(0, len(args), ARGUMENT_PIECE)]
    return deltas


def chat_chunk(ids: ChatIds, delta: dict, finish: str | None) -> dict:
    return {"id": ids.id, "object": "chat.completion.chunk", "created": ids.created, "model": ids.model,
            "system_fingerprint": "xuetu",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}


def usage_chunk(ids: ChatIds, obj: str, prompt: int, completion: int) -> dict:
    return {"id": ids.id, "object": obj, "created": ids.created, "model": ids.model, "system_fingerprint": "xuetu",
            "choices": [], "usage": usage(prompt, completion)}


def completion(ids: ChatIds, text: str, finish: str | None, usage_: dict | None = None) -> dict:
    body = {"id": ids.id, "object": "text_completion", "created": ids.created, "model": ids.model,
            "system_fingerprint": "xuetu",
            "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}]}
    if usage_ is not None:
        body["usage"] = usage_
    return body


def model_card(name: str, created: int, owner: str = "xuetu") -> dict:
    return {"id": name, "object": "model", "created": created, "owned_by": owner}
