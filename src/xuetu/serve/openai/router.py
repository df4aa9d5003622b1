"""OpenAI-compatible routes under /v1. Thin: translate shapes, call the generation service."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from xuetu import models
from xuetu.errors import BadInput
from xuetu.runtime.options import generation_options
from xuetu.serve.common import wants_wait
from xuetu.serve.errors import stream_error
from xuetu.serve.generation import collect, collect_calls, generate, serving
from xuetu.serve.tooling import ToolUse
from xuetu.serve import rag
from xuetu.serve.openai import protocol as p

router = APIRouter(prefix="/v1")


def _created(ref) -> int:
    from datetime import datetime

    try:
        return int(datetime.fromisoformat(ref.manifest["created_at"]).timestamp())
    except (KeyError, ValueError):
        return 0


@router.get("/models")
async def list_models():
    refs = await asyncio.to_thread(models.list_models)
    return {"object": "list", "data": [p.model_card(r.name, _created(r)) for r in refs if not r.problems()]}


@router.get("/models/{model_id:path}")
async def get_model(model_id: str):
    ref = await asyncio.to_thread(models.resolve, model_id)
    return p.model_card(ref.name, _created(ref))


def _format(rf: p.ResponseFormat | None):
    if rf is None or rf.type == "text":
        return None
    if rf.type == "json_object":
        return "json"
    schema = (rf.json_schema or {}).get("schema")
    if not isinstance(schema, dict):
        raise BadInput("response_format.json_schema.schema must be a JSON schema object", param="response_format")
    return schema


def _options(body: p._Sampling, params: dict, request: Request, **extra):
    max_tokens = getattr(body, "max_completion_tokens", None) or body.max_tokens
    return generation_options(params, temperature=body.temperature, top_p=body.top_p, top_k=body.top_k,
                              max_tokens=max_tokens, seed=body.seed, stop=body.stop,
                              repeat_penalty=body.repeat_penalty, max_allowed=request.app.state.args.max_tokens,
                              **extra)


def _sse(events):
    async def body():
        try:
            async for event in events:
                yield f"data: {json.dumps(event, ensure_ascii=False)}\n\n"
        except Exception as e:  # part-way: the status is sent already, the error travels as an event
            yield f"data: {json.dumps(stream_error('/v1', e), ensure_ascii=False)}\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(body(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


@router.post("/chat/completions")
async def chat_completions(body: p.ChatCompletionRequest, request: Request):
    started = time.perf_counter()
    model, kb_name = rag.split_model(body.model, body.kb)
    context = serving(request)
    async with request.app.state.manager.lease(model, body.keep_alive, wants_wait(request)) as lease:
        messages = [m.as_message() for m in body.messages]
        tools = ToolUse.parse(body.tools, body.tool_choice, body.parallel_tool_calls)
        opts = _options(body, lease.ref.params, request, format=_format(body.response_format),
                        forced_call=tools.forces_call)
        used = None
        if kb_name:
            messages, used = await rag.augment(lease, messages, kb_name, context.guard)
        chunks, timing = await generate(lease, messages, opts, started, context, tools)
    ids = p.ChatIds(lease.ref.name)
    if not body.stream:
        text, calls = await collect_calls(chunks)
        reply = p.chat_completion(ids, text, timing.finish_reason, timing.prompt_tokens, timing.completion_tokens,
                                  calls)
        if used is not None:
            reply["citations"] = rag.citations_payload(text, used)  # xuetu extension
        return reply

    async def events():
        yield p.chat_chunk(ids, {"role": "assistant", "content": ""}, None)
        parts = []
        async for chunk in chunks:
            if chunk.text:
                parts.append(chunk.text)
                yield p.chat_chunk(ids, {"content": chunk.text}, None)
            for delta in p.tool_call_deltas(chunk.tool_calls or []):
                yield p.chat_chunk(ids, delta, None)
            if chunk.finish_reason:
                last = p.chat_chunk(ids, {}, chunk.finish_reason)
                if used is not None:  # xuetu extension: the sources ride on the final chunk
                    last["citations"] = rag.citations_payload("".join(parts), used)
                yield last
        if body.stream_options and body.stream_options.include_usage:
            yield p.usage_chunk(ids, "chat.completion.chunk", timing.prompt_tokens, timing.completion_tokens)

    return _sse(events())


@router.post("/completions")
async def completions(body: p.CompletionRequest, request: Request):
    started = time.perf_counter()
    prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt  # one, as the protocol declares
    async with request.app.state.manager.lease(body.model, body.keep_alive, wants_wait(request)) as lease:
        opts = _options(body, lease.ref.params, request)
        chunks, timing = await generate(lease, prompts[0], opts, started, serving(request))
    ids = p.ChatIds(lease.ref.name, "cmpl")
    prefix = prompts[0] if body.echo else ""
    if not body.stream:
        text = prefix + await collect(chunks)
        return p.completion(ids, text, timing.finish_reason, p.usage(timing.prompt_tokens, timing.completion_tokens))

    async def events():
        if prefix:
            yield p.completion(ids, prefix, None)
        async for chunk in chunks:
            if chunk.text or chunk.finish_reason:
                yield p.completion(ids, chunk.text, chunk.finish_reason)
        if body.stream_options and body.stream_options.include_usage:
            yield p.usage_chunk(ids, "text_completion", timing.prompt_tokens, timing.completion_tokens)

    return _sse(events())


@router.post("/embeddings")
async def embeddings(body: p.EmbeddingRequest, request: Request):
    texts = [body.input] if isinstance(body.input, str) else body.input  # 1-2048 non-empty, as declared
    async with request.app.state.manager.lease(body.model, wait=wants_wait(request)) as lease:
        if lease.generates:
            raise BadInput(f"{lease.ref.name} is not an embedding model; try all-minilm:l6-v2", param="model")
        if body.dimensions is not None and body.dimensions != lease.encoder.dimensions:
            raise BadInput(f"{lease.ref.name} makes {lease.encoder.dimensions}-dimensional vectors",
                           param="dimensions")
        vectors, tokens = await asyncio.to_thread(lease.encoder.embed, texts)

    def encode(v):
        if body.encoding_format == "base64":
            return base64.b64encode(np.asarray(v, dtype="<f4").tobytes()).decode()
        return v

    return {"object": "list", "model": lease.ref.name,
            "data": [{"object": "embedding", "index": i, "embedding": encode(v)} for i, v in enumerate(vectors)],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
