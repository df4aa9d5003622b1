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
from xuetu.errors import XuetuError
from xuetu.serve.common import build_options, wants_wait
from xuetu.serve.errors import ApiError, bad_request, model_not_found
from xuetu.serve.generation import collect, generate
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
    try:
        ref = models.resolve(model_id)
    except XuetuError:
        raise model_not_found(model_id)
    return p.model_card(ref.name, _created(ref))


def _format(rf: p.ResponseFormat | None):
    if rf is None or rf.type == "text":
        return None
    if rf.type == "json_object":
        return "json"
    schema = (rf.json_schema or {}).get("schema")
    if not isinstance(schema, dict):
        raise bad_request("response_format.json_schema.schema must be a JSON schema object", "response_format")
    return schema


def _options(body: p._Sampling, params: dict, **extra):
    max_tokens = getattr(body, "max_completion_tokens", None) or body.max_tokens
    return build_options(params, temperature=body.temperature, top_p=body.top_p, top_k=body.top_k,
                         max_tokens=max_tokens, seed=body.seed, stop=body.stop, repeat_penalty=body.repeat_penalty,
                         **extra)


def _sse(events):
    async def body():
        try:
            async for event in events:
                yield f"data: {json.dumps(event, ensure_ascii=False)}\n\n"
        except ApiError as e:
            yield f"data: {json.dumps({'error': {'message': e.message, 'type': e.type, 'code': e.code}})}\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(body(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


@router.post("/chat/completions")
async def chat_completions(body: p.ChatCompletionRequest, request: Request):
    started = time.perf_counter()
    state = request.app.state
    model, kb_name = rag.split_model(body.model, body.kb)
    lease = await state.manager.acquire(model, keep_alive=body.keep_alive, wait=wants_wait(request))
    used = None
    try:
        messages = [{"role": "system" if m.role == "developer" else m.role, "content": m.text()} for m in body.messages]
        opts = _options(body, lease.ref.params, format=_format(body.response_format))
        if kb_name:
            messages, used = await rag.augment(lease, messages, kb_name)
    except BaseException as e:
        lease.release()
        raise bad_request(str(e), "messages") if isinstance(e, ValueError) else e
    chunks, timing = await generate(state, lease, messages, opts, started)
    ids = p.ChatIds(lease.ref.name)
    if not body.stream:
        text = await collect(chunks)
        reply = p.chat_completion(ids, text, timing.finish_reason, timing.prompt_tokens, timing.completion_tokens)
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
    state = request.app.state
    lease = await state.manager.acquire(body.model, keep_alive=body.keep_alive, wait=wants_wait(request))
    try:
        opts = _options(body, lease.ref.params)
    except ApiError:
        lease.release()
        raise
    chunks, timing = await generate(state, lease, prompts[0], opts, started)
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
    state = request.app.state
    lease = await state.manager.acquire(body.model, wait=wants_wait(request))
    try:
        if lease.loaded.engine_name != "sentence-transformers":
            raise bad_request(f"{lease.ref.name} is not an embedding model; try all-minilm:l6-v2", "model")
        if body.dimensions is not None and body.dimensions != lease.encoder.dimensions:
            raise bad_request(f"{lease.ref.name} makes {lease.encoder.dimensions}-dimensional vectors", "dimensions")
        vectors, tokens = await asyncio.to_thread(lease.encoder.embed, texts)
    except XuetuError as e:
        raise bad_request(e.message, "input")
    finally:
        lease.release()

    def encode(v):
        if body.encoding_format == "base64":
            return base64.b64encode(np.asarray(v, dtype="<f4").tobytes()).decode()
        return v

    return {"object": "list", "model": lease.ref.name,
            "data": [{"object": "embedding", "index": i, "embedding": encode(v)} for i, v in enumerate(vectors)],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
