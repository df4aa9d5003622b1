"""The web app: `/` serves the page, `/app/...` its scripts, styles and vendored libraries.

Static files only, shipped in the package (xuetu/serve/web/), nothing fetched from the internet and no
build step. The app reaches the server through the same public API as any other client, so these routes
need no API key; every API route the page calls still does.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

WEB_DIR = Path(__file__).parent / "web"

router = APIRouter()


@router.get("/", include_in_schema=False)
async def index():
    return FileResponse(WEB_DIR / "index.html", media_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})


def mount(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/app", StaticFiles(directory=WEB_DIR), name="web")


def is_public(path: str) -> bool:
    """The page and its assets; the API behind them keeps its bearer auth."""
    return path == "/" or path.startswith("/app/")
