"""Ollama-compatible routes under /api. Thin: translate shapes, call the library and the generation service."""

from __future__ import annotations

import asyncio
import json
import time

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from xuetu import __version__, models
from xuetu.errors import BadInput, NotAllowed, XuetuError
from xuetu.models import store
from xuetu.models.facts import describe
from xuetu.runtime.options import generation_options
from xuetu.runtime.settings import parse_duration
from xuetu.serve.common import wants_wait
from xuetu.serve.errors import stream_error
from xuetu.serve.generation import collect, collect_calls, generate, serving
from xuetu.serve.tooling import ToolUse
from xuetu.serve import pools, rag
from xuetu.serve.ollama import protocol as p

router = APIRouter(prefix="/api")
NDJSON = "application/x-ndjson"


def _ndjson(events):
    async def body():
        try:
            async for event in events:
                yield json.dumps(event, ensure_ascii=False) + "\n"
        except Exception as e:  # part-way: the status is sent already, the error travels as a line
            yield json.dumps(stream_error("/api", e), ensure_ascii=False) + "\n"

    return StreamingResponse(body(), media_type=NDJSON)


def _options(o: p.Options | None, params: dict, request: Request, fmt, forced_call: bool = False):
    o = o or p.Options()  # num_predict -1 / -2: as long as allowed
    return generation_options(params, temperature=o.temperature, top_p=o.top_p, top_k=o.top_k,
                              max_tokens=o.num_predict, seed=o.seed, stop=o.stop, repeat_penalty=o.repeat_penalty,
                              format=fmt, max_allowed=request.app.state.args.max_tokens, forced_call=forced_call)


def _with_system(messages: list[dict], system: str | None) -> list[dict]:
    if system and not any(m["role"] == "system" for m in messages):
        return [{"role": "system", "content": system}] + messages
    return messages


async def _load_only(request: Request, name: str, keep_alive, key: str) -> dict:
    """Ollama loads a model when asked to generate nothing, and unloads it with keep_alive 0."""
    manager = request.app.state.manager
    try:
        unload = keep_alive is not None and parse_duration(keep_alive) == 0
    except XuetuError as e:
        e.param = "keep_alive"
        raise
    if unload:
        ref = await asyncio.to_thread(manager.resolve, name)
        await manager.unload(manager.placement(ref).holder.name)
        reason = "unload"
    else:
        async with manager.lease(name, keep_alive, wants_wait(request)):
            reason = "load"
    empty = {"role": "assistant", "content": ""} if key == "message" else ""
    return {"model": manager.resolve(name).name, "created_at": p.now(), key: empty, "done": True, "done_reason": reason}


@router.post("/generate")
async def generate_route(body: p.GenerateRequest, request: Request):
    started = time.perf_counter()
    if body.images or body.suffix or body.template:
        raise BadInput("images, suffix and template are not supported; xuetu uses the model's own chat template")
    if not body.prompt:
        return await _load_only(request, body.model, body.keep_alive, "response")
    async with request.app.state.manager.lease(body.model, body.keep_alive, wants_wait(request)) as lease:
        opts = _options(body.options, lease.ref.params, request, body.format)
        if body.raw or lease.ref.kind == "base":
            prompt = body.prompt
        else:
            prompt = _with_system([{"role": "user", "content": body.prompt}], body.system or lease.ref.system)
        chunks, timing = await generate(lease, prompt, opts, started, serving(request))
    name = lease.ref.name
    if not body.stream:
        text = await collect(chunks)
        return {"model": name, "created_at": p.now(), "response": text, **p.final_fields(timing, timing.finish_reason)}

    async def events():
        async for chunk in chunks:
            if chunk.text:
                yield {"model": name, "created_at": p.now(), "response": chunk.text, "done": False}
            if chunk.finish_reason:
                yield {"model": name, "created_at": p.now(), "response": "", **p.final_fields(timing, chunk.finish_reason)}

    return _ndjson(events())


def _assistant(text: str, calls: list | None) -> dict:
    message = {"role": "assistant", "content": text}
    if calls:
        message["tool_calls"] = p.tool_calls(calls)
    return message


def _done_reason(finish: str | None) -> str | None:
    return "stop" if finish == "tool_calls" else finish  # Ollama ends an answer with calls as "stop"


@router.post("/chat")
async def chat_route(body: p.ChatRequest, request: Request):
    started = time.perf_counter()
    if any(m.images for m in body.messages):
        raise BadInput("images are not supported: xuetu's models read text", param="messages")
    if not body.messages:
        return await _load_only(request, body.model, body.keep_alive, "message")
    model, kb_name = rag.split_model(body.model, body.kb)
    context = serving(request)
    async with request.app.state.manager.lease(model, body.keep_alive, wants_wait(request)) as lease:
        tools = ToolUse.parse(body.tools, body.tool_choice)
        opts = _options(body.options, lease.ref.params, request, body.format, tools.forces_call)
        messages = _with_system([m.as_message(i) for i, m in enumerate(body.messages)], lease.ref.system)
        used = None
        if kb_name:
            messages, used = await rag.augment(lease, messages, kb_name, context.guard)
        chunks, timing = await generate(lease, messages, opts, started, context, tools)
    name = lease.ref.name
    if not body.stream:
        text, calls = await collect_calls(chunks)
        reply = {"model": name, "created_at": p.now(), "message": _assistant(text, calls),
                 **p.final_fields(timing, _done_reason(timing.finish_reason))}
        if used is not None:
            reply["citations"] = rag.citations_payload(text, used)  # xuetu extension
        return reply

    async def events():
        parts = []
        async for chunk in chunks:
            if chunk.text:
                parts.append(chunk.text)
                yield {"model": name, "created_at": p.now(), "message": {"role": "assistant", "content": chunk.text},
                       "done": False}
            if chunk.tool_calls:  # as Ollama streams them: whole, in a line of their own before the last
                yield {"model": name, "created_at": p.now(), "message": _assistant("", chunk.tool_calls),
                       "done": False}
            if chunk.finish_reason:
                last = {"model": name, "created_at": p.now(), "message": {"role": "assistant", "content": ""},
                        **p.final_fields(timing, _done_reason(chunk.finish_reason))}
                if used is not None:  # xuetu extension: the sources ride on the final line
                    last["citations"] = rag.citations_payload("".join(parts), used)
                yield last

    return _ndjson(events())


def _tag(ref) -> dict:
    facts = describe(ref)
    return {"name": ref.name, "model": ref.name, "modified_at": p.modified_at(ref), "size": facts.disk_bytes,
            "digest": p.digest(ref), "details": p.details(ref, facts),
            # xuetu extension, as /api/show names it: lets a client tell chat models from embedders
            "capabilities": p.capabilities(ref), **p.remote_fields(ref)}


@router.get("/tags")
async def tags():
    refs = await asyncio.to_thread(models.list_models)
    return {"models": await asyncio.to_thread(lambda: [_tag(r) for r in refs if not r.problems()])}


def _resolve(name: str):
    from xuetu.runtime.manager import ModelManager

    return ModelManager.resolve(name)


@router.post("/show")
async def show(body: p.ShowRequest):
    ref = _resolve(body.model)
    facts = await asyncio.to_thread(describe, ref)
    template = ""
    holder = models.resolve(ref.base) if ref.base else ref
    if holder.hf_dir is not None and (holder.hf_dir / "chat_template.jinja").is_file():
        template = (holder.hf_dir / "chat_template.jinja").read_text(encoding="utf-8")
    params = "\n".join(f"{k:<16}{v}" for k, v in ref.params.items())
    arch = p.details(ref, facts)["family"]
    info = {"general.architecture": arch, "general.parameter_count": facts.parameters,
            f"{arch}.context_length": facts.context_length}
    modelfile = f"# Modelfile generated by xuetu\nFROM {ref.base or ref.name}\n" + "".join(
        f"PARAMETER {k} {v}\n" for k, v in ref.params.items()) + (f'SYSTEM """{ref.system}"""\n' if ref.system else "")
    return {"modelfile": modelfile, "parameters": params, "template": template, "system": ref.system or "",
            "details": p.details(ref, facts), "model_info": info, "capabilities": p.capabilities(ref),
            "modified_at": p.modified_at(ref),
            # xuetu extensions: bytes the weights need at each precision, and the files on disk
            "memory": dict(facts.memory()), "size": facts.disk_bytes, **p.remote_fields(ref)}


@router.post("/pull")
async def pull(body: p.PullRequest):
    from xuetu.models.imports import check_pull_name

    try:
        check_pull_name(body.model)
    except XuetuError as e:
        e.param = e.param or "model"
        raise
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    last = [0.0]

    def report(status: str, total: int | None = None, completed: int | None = None):
        now = time.monotonic()
        if completed is not None and completed != total and now - last[0] < 0.2:
            return  # at most five progress lines a second per file
        last[0] = now
        line = {"status": status}
        if total is not None:
            line.update(digest=status.split(" ", 1)[-1], total=total, completed=completed or 0)
        loop.call_soon_threadsafe(queue.put_nowait, line)

    async def run():
        try:
            await pools.run("heavy", models.pull, body.model, False, None, report)
            await queue.put({"status": "success"})
        except XuetuError as e:  # a hub that failed us is an upstream error (502); a bad name is the client's
            e.param = e.param or "model"
            await queue.put(e)
        finally:
            await queue.put(None)

    task = loop.create_task(run())
    await queue.put({"status": "pulling manifest"})
    if not body.stream:
        await task
        last_line = None
        while (item := queue.get_nowait()) is not None:
            last_line = item
        if isinstance(last_line, XuetuError):
            raise last_line
        return last_line

    async def events():
        while (item := await queue.get()) is not None:
            if isinstance(item, XuetuError):
                yield stream_error("/api", item)
                continue
            yield item

    return StreamingResponse((json.dumps(e) + "\n" async for e in events()), media_type=NDJSON)


@router.post("/create")
async def create(body: p.CreateRequest, request: Request):
    from xuetu.models.imports import HTTP_FROM_HINT, create_from_request

    if not body.model or not body.from_:
        raise BadInput(f"model and from are required. {HTTP_FROM_HINT}")
    if body.files or body.adapters or body.quantize or body.template:
        raise BadInput(f"files, adapters, quantize and template are not supported. {HTTP_FROM_HINT}")
    args = request.app.state.args
    overrides = {"system": body.system} if body.system is not None else {}
    await pools.run("heavy", create_from_request, body.model, body.from_, overrides, body.parameters,
                    args.import_dir, args.max_import_bytes, _overwrite(body, args))
    lines = [{"status": "reading model metadata"}, {"status": "writing manifest"}, {"status": "success"}]
    if not body.stream:
        return lines[-1]
    return StreamingResponse((json.dumps(x) + "\n" for x in lines), media_type=NDJSON)


def _overwrite(body, args) -> bool:
    """Replace an existing model only when the request asks and the server allows it (--allow-overwrite)."""
    if body.overwrite and not args.allow_overwrite:
        raise NotAllowed("this server does not let requests replace models",
                         "Start it with --allow-overwrite, or pick a new name.", param="overwrite")
    return bool(body.overwrite)


@router.post("/copy")
async def copy(body: p.CopyRequest, request: Request):
    src = _resolve(body.source)
    await pools.run("heavy", store.copy, src.name, body.destination, None, _overwrite(body, request.app.state.args))
    return Response(status_code=200)


@router.delete("/delete")
async def delete(body: p.DeleteRequest, request: Request):
    ref = _resolve(body.model)
    await request.app.state.manager.unload(ref.name)
    await pools.run("heavy", store.remove, ref.name)
    return Response(status_code=200)


@router.get("/ps")
async def ps(request: Request):
    import datetime as dt

    out = []
    for m in request.app.state.manager.ps():
        ref = models.resolve(m["name"])
        facts = await asyncio.to_thread(describe, ref)
        expires = (dt.datetime.fromtimestamp(m["expires_at"], dt.timezone.utc).isoformat()
                   if m["expires_at"] else "9999-12-31T23:59:59Z")
        out.append({"name": m["name"], "model": m["name"], "size": m["size"], "digest": p.digest(ref),
                    "details": p.details(ref, facts), "expires_at": expires, "size_vram": 0,
                    # as Ollama: the context each request gets here (a llama.cpp slot's, where slots split the cache)
                    "context_length": m["kv_cache"]["slot_context"] if "kv_cache" in m else facts.context_length,
                    # xuetu extensions:
                    "engine": m["engine"], "adapters": m["adapters"], "queue": m["queue"], "peak_batch": m["peak_batch"],
                    "quant": m["quant"], **({"kv_cache": m["kv_cache"]} if "kv_cache" in m else {})})
    return {"models": out}


async def _embed(request: Request, name: str, texts: list[str], truncate: bool, keep_alive, dimensions=None):
    started = time.perf_counter()
    async with request.app.state.manager.lease(name, keep_alive, wants_wait(request)) as lease:
        if lease.generates:
            raise BadInput(f"{lease.ref.name} is not an embedding model; try all-minilm:l6-v2", param="model")
        if dimensions is not None and dimensions != lease.encoder.dimensions:
            raise BadInput(f"{lease.ref.name} makes {lease.encoder.dimensions}-dimensional vectors",
                           param="dimensions")
        vectors, tokens = await asyncio.to_thread(lease.encoder.embed, texts, truncate)
    return lease, vectors, tokens, time.perf_counter() - started


@router.post("/embed")
async def embed(body: p.EmbedRequest, request: Request):
    texts = [body.input] if isinstance(body.input, str) else body.input
    if not texts or any(not t for t in texts) or len(texts) > 2048:
        raise BadInput("input must be a non-empty string or 1-2048 non-empty strings", param="input")
    lease, vectors, tokens, took = await _embed(request, body.model, texts, body.truncate, body.keep_alive,
                                                body.dimensions)
    return {"model": lease.ref.name, "embeddings": vectors, "total_duration": p.ns(took),
            "load_duration": p.ns(lease.load_seconds), "prompt_eval_count": tokens}


@router.post("/embeddings")
async def embeddings_legacy(body: p.LegacyEmbeddingsRequest, request: Request):
    if not body.prompt:
        raise BadInput("prompt is required", param="prompt")
    _, vectors, _, _ = await _embed(request, body.model, [body.prompt], True, body.keep_alive)
    return {"embedding": vectors[0]}


@router.get("/version")
async def version():
    return {"version": __version__}
