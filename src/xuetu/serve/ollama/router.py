"""Ollama-compatible routes under /api. Thin: translate shapes, call the library and the generation service."""

from __future__ import annotations

import asyncio
import json
import time

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from xuetu import __version__, models
from xuetu.errors import DownloadError, ModelNotFound, XuetuError
from xuetu.models import store
from xuetu.models.facts import describe
from xuetu.serve.common import build_options, wants_wait
from xuetu.serve.errors import ApiError, bad_request, model_not_found, to_api_error
from xuetu.serve.generation import collect, generate
from xuetu.serve import pools, rag
from xuetu.serve.ollama import protocol as p

router = APIRouter(prefix="/api")
NDJSON = "application/x-ndjson"


def _ndjson(events):
    async def body():
        try:
            async for event in events:
                yield json.dumps(event, ensure_ascii=False) + "\n"
        except ApiError as e:
            yield json.dumps({"error": e.message}) + "\n"

    return StreamingResponse(body(), media_type=NDJSON)


def _options(o: p.Options | None, params: dict, state, fmt) -> object:
    o = o or p.Options()
    max_tokens = None
    if o.num_predict is not None:
        max_tokens = o.num_predict if o.num_predict > 0 else state.args.max_tokens  # -1 / -2: as long as allowed
    return build_options(params, temperature=o.temperature, top_p=o.top_p, top_k=o.top_k, max_tokens=max_tokens,
                         seed=o.seed, stop=o.stop, repeat_penalty=o.repeat_penalty, format=fmt)


def _with_system(messages: list[dict], system: str | None) -> list[dict]:
    if system and not any(m["role"] == "system" for m in messages):
        return [{"role": "system", "content": system}] + messages
    return messages


async def _load_only(request: Request, name: str, keep_alive, key: str) -> dict:
    """Ollama loads a model when asked to generate nothing, and unloads it with keep_alive 0."""
    manager = request.app.state.manager
    from xuetu.serve.args import parse_duration

    try:
        unload = keep_alive is not None and parse_duration(keep_alive) == 0
    except XuetuError as e:
        raise bad_request(e.message, "keep_alive")
    if unload:
        ref = manager.resolve(name)
        await manager.unload(manager._placement(ref)[0][0])
        reason = "unload"
    else:
        lease = await manager.acquire(name, keep_alive=keep_alive, wait=wants_wait(request))
        lease.release()
        reason = "load"
    empty = {"role": "assistant", "content": ""} if key == "message" else ""
    return {"model": manager.resolve(name).name, "created_at": p.now(), key: empty, "done": True, "done_reason": reason}


@router.post("/generate")
async def generate_route(body: p.GenerateRequest, request: Request):
    started = time.perf_counter()
    if body.images or body.suffix or body.template:
        raise bad_request("images, suffix and template are not supported; xuetu uses the model's own chat template")
    if not body.prompt:
        return await _load_only(request, body.model, body.keep_alive, "response")
    state = request.app.state
    lease = await state.manager.acquire(body.model, keep_alive=body.keep_alive, wait=wants_wait(request))
    try:
        opts = _options(body.options, lease.ref.params, state, body.format)
        if body.raw or lease.ref.kind == "base":
            prompt = body.prompt
        else:
            prompt = _with_system([{"role": "user", "content": body.prompt}], body.system or lease.ref.system)
    except ApiError:
        lease.release()
        raise
    chunks, timing = await generate(state, lease, prompt, opts, started)
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


@router.post("/chat")
async def chat_route(body: p.ChatRequest, request: Request):
    started = time.perf_counter()
    if body.tools:
        raise bad_request("tools are not supported yet")
    if any(m.images for m in body.messages):
        raise bad_request("images are not supported: xuetu's models read text")
    if not body.messages:
        return await _load_only(request, body.model, body.keep_alive, "message")
    state = request.app.state
    model, kb_name = rag.split_model(body.model, body.kb)
    lease = await state.manager.acquire(model, keep_alive=body.keep_alive, wait=wants_wait(request))
    used = None
    try:
        opts = _options(body.options, lease.ref.params, state, body.format)
        messages = _with_system([{"role": m.role, "content": m.content} for m in body.messages], lease.ref.system)
        if kb_name:
            messages, used = await rag.augment(lease, messages, kb_name)
    except BaseException:
        lease.release()
        raise
    chunks, timing = await generate(state, lease, messages, opts, started)
    name = lease.ref.name
    if not body.stream:
        text = await collect(chunks)
        reply = {"model": name, "created_at": p.now(), "message": {"role": "assistant", "content": text},
                 **p.final_fields(timing, timing.finish_reason)}
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
            if chunk.finish_reason:
                last = {"model": name, "created_at": p.now(), "message": {"role": "assistant", "content": ""},
                        **p.final_fields(timing, chunk.finish_reason)}
                if used is not None:  # xuetu extension: the sources ride on the final line
                    last["citations"] = rag.citations_payload("".join(parts), used)
                yield last

    return _ndjson(events())


def _tag(ref) -> dict:
    facts = describe(ref)
    return {"name": ref.name, "model": ref.name, "modified_at": p.modified_at(ref), "size": facts.disk_bytes,
            "digest": p.digest(ref), "details": p.details(ref, facts),
            # xuetu extension, as /api/show names it: lets a client tell chat models from embedders
            "capabilities": p.capabilities(ref)}


@router.get("/tags")
async def tags():
    refs = await asyncio.to_thread(models.list_models)
    return {"models": await asyncio.to_thread(lambda: [_tag(r) for r in refs if not r.problems()])}


def _resolve(name: str):
    if not name:
        raise bad_request("model is required", "model")
    try:
        return models.resolve(name)
    except ModelNotFound:
        raise model_not_found(name)
    except XuetuError as e:
        raise bad_request(e.message, "model")


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
            "memory": dict(facts.memory()), "size": facts.disk_bytes}


@router.post("/pull")
async def pull(body: p.PullRequest):
    from xuetu.models.imports import check_pull_name

    try:
        check_pull_name(body.model)
    except XuetuError as e:
        raise to_api_error(e, "model")
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
        except DownloadError as e:  # only a hub that failed us is an upstream error; a bad name is the client's
            await queue.put(ApiError(502, e.message))
        except XuetuError as e:
            await queue.put(to_api_error(e, "model"))
        finally:
            await queue.put(None)

    task = loop.create_task(run())
    await queue.put({"status": "pulling manifest"})
    if not body.stream:
        await task
        last_line = None
        while (item := queue.get_nowait()) is not None:
            last_line = item
        if isinstance(last_line, ApiError):
            raise last_line
        return last_line

    async def events():
        while (item := await queue.get()) is not None:
            if isinstance(item, ApiError):
                yield {"error": item.message}
                continue
            yield item

    return StreamingResponse((json.dumps(e) + "\n" async for e in events()), media_type=NDJSON)


@router.post("/create")
async def create(body: p.CreateRequest, request: Request):
    from xuetu.models.imports import HTTP_FROM_HINT, create_from_request

    if not body.model or not body.from_:
        raise bad_request(f"model and from are required. {HTTP_FROM_HINT}")
    if body.files or body.adapters or body.quantize or body.template:
        raise bad_request(f"files, adapters, quantize and template are not supported. {HTTP_FROM_HINT}")
    args = request.app.state.args
    overrides = {"system": body.system} if body.system is not None else {}
    try:
        await pools.run("heavy", create_from_request, body.model, body.from_, overrides, body.parameters,
                        args.import_dir, args.max_import_bytes, _overwrite(body, args))
    except XuetuError as e:
        raise to_api_error(e)
    lines = [{"status": "reading model metadata"}, {"status": "writing manifest"}, {"status": "success"}]
    if not body.stream:
        return lines[-1]
    return StreamingResponse((json.dumps(x) + "\n" for x in lines), media_type=NDJSON)


def _overwrite(body, args) -> bool:
    """Replace an existing model only when the request asks and the server allows it (--allow-overwrite)."""
    if body.overwrite and not args.allow_overwrite:
        raise ApiError(403, "this server does not let requests replace models", type="permission_error",
                       code="not_allowed")
    return bool(body.overwrite)


@router.post("/copy")
async def copy(body: p.CopyRequest, request: Request):
    src = _resolve(body.source)
    try:
        await pools.run("heavy", store.copy, src.name, body.destination, None, _overwrite(body, request.app.state.args))
    except XuetuError as e:
        raise to_api_error(e)
    return Response(status_code=200)


@router.delete("/delete")
async def delete(body: p.DeleteRequest, request: Request):
    ref = _resolve(body.model)
    await request.app.state.manager.unload(ref.name)
    try:
        await pools.run("heavy", store.remove, ref.name)
    except XuetuError as e:
        raise bad_request(e.message)
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
                    "context_length": facts.context_length,
                    # xuetu extensions:
                    "engine": m["engine"], "adapters": m["adapters"], "queue": m["queue"], "peak_batch": m["peak_batch"],
                    "quant": m["quant"]})
    return {"models": out}


async def _embed(request: Request, name: str, texts: list[str], truncate: bool, keep_alive, dimensions=None):
    state = request.app.state
    started = time.perf_counter()
    lease = await state.manager.acquire(name, keep_alive=keep_alive, wait=wants_wait(request))
    try:
        if lease.loaded.engine_name != "sentence-transformers":
            raise bad_request(f"{lease.ref.name} is not an embedding model; try all-minilm:l6-v2", "model")
        if dimensions is not None and dimensions != lease.encoder.dimensions:
            raise bad_request(f"{lease.ref.name} makes {lease.encoder.dimensions}-dimensional vectors", "dimensions")
        vectors, tokens = await asyncio.to_thread(lease.encoder.embed, texts, truncate)
    except XuetuError as e:
        raise bad_request(e.message, "input")
    finally:
        lease.release()
    return lease, vectors, tokens, time.perf_counter() - started


@router.post("/embed")
async def embed(body: p.EmbedRequest, request: Request):
    texts = [body.input] if isinstance(body.input, str) else body.input
    if not texts or any(not t for t in texts) or len(texts) > 2048:
        raise bad_request("input must be a non-empty string or 1-2048 non-empty strings", "input")
    lease, vectors, tokens, took = await _embed(request, body.model, texts, body.truncate, body.keep_alive,
                                                body.dimensions)
    return {"model": lease.ref.name, "embeddings": vectors, "total_duration": p.ns(took),
            "load_duration": p.ns(lease.load_seconds), "prompt_eval_count": tokens}


@router.post("/embeddings")
async def embeddings_legacy(body: p.LegacyEmbeddingsRequest, request: Request):
    if not body.prompt:
        raise bad_request("prompt is required", "prompt")
    _, vectors, _, _ = await _embed(request, body.model, [body.prompt], True, body.keep_alive)
    return {"embedding": vectors[0]}


@router.get("/version")
async def version():
    return {"version": __version__}
