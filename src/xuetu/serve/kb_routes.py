"""Knowledge-base routes under /v1/kb (OpenAI-style errors, the same bearer auth). Thin: each calls
one function of xuetu.rag in a worker thread.

    POST   /v1/kb                                   create
    GET    /v1/kb                                   list
    GET    /v1/kb/{name}                            settings and documents
    DELETE /v1/kb/{name}                            delete
    PUT    /v1/kb/{name}/documents/{filename}       upload one file (the raw bytes are the body)
    GET    /v1/kb/{name}/documents/{doc}/chunks     a document's chunks
    DELETE /v1/kb/{name}/documents/{doc}            remove a document
    POST   /v1/kb/{name}/query                      retrieve chunks for a question
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from xuetu.errors import BadInput
from xuetu.serve import pools, rag, uploads
from xuetu.serve.errors import raw_body

router = APIRouter(prefix="/v1/kb")


KB_NAME = r"^[A-Za-z0-9\u4e00-\u9fff][A-Za-z0-9_.\-\u4e00-\u9fff]{0,63}$"  # as xuetu.rag.kb.check_name


class CreateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=KB_NAME, examples=["docs"])
    embedder: str | None = Field(None, max_length=256, examples=["all-minilm:l6-v2"])
    store: Literal["chroma", "qdrant"] = "chroma"
    location: str | None = None
    chunk_size: int = Field(200, ge=16, le=8192)
    overlap: int = Field(32, ge=0)
    reranker: str | None = None


class QueryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Field(min_length=1, max_length=4000)
    k: int = Field(5, ge=1, le=100)
    mode: Literal["hybrid", "dense", "bm25"] = "hybrid"
    sources: list[str] | None = None
    tags: list[str] | None = None


async def _call(fn, *args, **kwargs):
    return await pools.run("heavy", fn, *args, **kwargs)


def _detail(base) -> dict:
    docs = [{"source": s, "chunks": d["chunks"], "size": d["size"], "hash": d["hash"], "tags": d.get("tags", []),
             "added": d["added"]} for s, d in sorted(base.documents.items())]
    return {"object": "knowledge_base", **base.summary(), "documents_list": docs}


@router.get("")
async def list_kbs():
    from xuetu.rag import kb

    def rows():
        return [rag.open_cached(n).summary() for n in kb.list_names()]

    return {"object": "list", "data": [{"object": "knowledge_base", **r} for r in await _call(rows)]}


@router.post("", status_code=201)
async def create_kb(body: CreateRequest, request: Request):
    from xuetu.rag import kb
    from xuetu.serve.kb_allow import allowed_settings

    args = request.app.state.args
    chosen = await pools.run("heavy", allowed_settings, body.store, body.location, body.embedder, body.reranker,
                             args.qdrant_url, args.kb_locations)
    base = await _call(kb.create, body.name, chunk_size=body.chunk_size, overlap=body.overlap, **chosen)
    base.close()
    return _detail(rag.open_cached(body.name))


@router.get("/{name}")
async def get_kb(name: str):
    return _detail(rag.open_cached(name))


@router.delete("/{name}")
async def delete_kb(name: str):
    from xuetu.rag import kb

    rag.open_cached(name)  # 404 if unknown
    rag.forget(name)
    await _call(kb.remove, name)
    return {"object": "knowledge_base.deleted", "name": name, "deleted": True}


@router.put("/{name}/documents/{filename:path}",
            openapi_extra=raw_body("the file's bytes; its name's suffix says how it is read (.pdf, .md, .docx, .html, .txt)"))
async def upload(name: str, filename: str, request: Request, tags: str | None = None):
    from xuetu.rag import ingest

    base = rag.open_cached(name)
    safe = Path(filename).name
    if not safe or safe.startswith(".") or safe != filename.rsplit("/", 1)[-1]:
        raise BadInput(f"invalid file name {filename!r}", param="filename")
    with tempfile.TemporaryDirectory(prefix="xuetu-upload-") as tmp:
        path = Path(tmp) / safe
        await uploads.receive(request, path)
        report = await _call(ingest.add, base, [path], tags=[t for t in (tags or "").split(",") if t],
                             progress=False, names=[safe])
    return {"object": "knowledge_base.upload", "name": name, "added": report.added, "updated": report.updated,
            "unchanged": report.unchanged, "skipped": [{"source": s, "reason": r} for s, r in report.skipped],
            "chunks": report.chunks, "seconds": round(report.seconds, 3)}


@router.get("/{name}/documents/{doc:path}/chunks")
async def chunks(name: str, doc: str):
    base = rag.open_cached(name)
    source = await _call(base.find_document, doc)
    rows = await _call(base.read_chunks, source)
    return {"object": "list", "source": source,
            "data": [{"id": r["id"], "text": r["text"], **{k: v for k, v in r["metadata"].items()
                                                         if k in ("page", "heading", "start", "end", "index")}}
                     for r in rows]}


@router.delete("/{name}/documents/{doc:path}")
async def delete_document(name: str, doc: str):
    from xuetu.rag import ingest

    source = await _call(ingest.remove_document, rag.open_cached(name), doc)
    return {"object": "knowledge_base.document.deleted", "source": source, "deleted": True}


@router.post("/{name}/query")
async def query(name: str, body: QueryRequest):
    from xuetu.rag import retrieve

    base = rag.open_cached(name)
    results = await _call(retrieve.search, base, body.query, k=body.k, mode=body.mode,
                          where=retrieve.build_filter(body.sources, body.tags))
    return {"object": "list", "data": [r.to_dict() for r in results]}
