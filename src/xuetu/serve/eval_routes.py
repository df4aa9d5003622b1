"""Evaluation reports (a xuetu extension): what `xuetu eval`, `compare`, `prompt compare` and `decide` wrote.
Thin: each calls one function of xuetu.evaluate.report in a worker thread.

    GET /v1/evals                      list the reports, newest first
    GET /v1/evals/{name}               one report's JSON (metrics with intervals, every example)
    GET /v1/evals/{name}/report.html   the report as one self-contained page (figures inlined)
    GET /v1/evals/{name}/report.md     the report as Markdown
"""

from __future__ import annotations

import asyncio
import json

from fastapi import APIRouter
from fastapi.responses import Response

from xuetu.errors import NotFound

router = APIRouter(prefix="/v1")


async def _folder(name: str):
    from xuetu.evaluate import report

    try:
        return await asyncio.to_thread(report.folder, name)
    except PermissionError:  # a name leading out of the reports folder names no report
        raise NotFound(f"no evaluation report named {name!r}") from None


@router.get("/evals")
async def list_evals():
    from xuetu.evaluate import report

    return {"object": "list", "data": await asyncio.to_thread(report.list_reports)}


@router.get("/evals/{name}")
async def get_eval(name: str):
    path = await _folder(name)
    return {"object": "eval", "name": name, **json.loads((path / "report.json").read_text(encoding="utf-8"))}


@router.get("/evals/{name}/report.{kind}")
async def get_eval_page(name: str, kind: str):
    if kind not in ("html", "md"):
        raise NotFound(f"a report is served as report.html or report.md, not report.{kind}")
    path = await _folder(name)
    media = "text/html; charset=utf-8" if kind == "html" else "text/markdown; charset=utf-8"
    # the page is ours but shows model output: no scripts may run in it, whoever opens it
    return Response((path / f"report.{kind}").read_bytes(), media_type=media,
                    headers={"Content-Security-Policy": "default-src 'none'; img-src data:; style-src 'unsafe-inline'"})
