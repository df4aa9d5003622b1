"""The web app: `/` serves the page, `/app/...` its scripts, styles and vendored libraries.

Static files only, shipped in the package (xuetu/serve/web/), nothing fetched from the internet and no
build step. The app reaches the server through the same public API as any other client, so these routes
need no API key; every API route the page calls still does.

Every page and asset carries a Content-Security-Policy: scripts, styles, fonts and connections only from this
server, images only from it or data: URLs, no form posts, no framing by other sites. A model's answer that
slips markup past the Markdown sanitiser (api.js) still cannot load a remote image to leak the conversation.
The one inline style allowed is the evaluation report's stylesheet (by hash): the report is shown in a
sandboxed srcdoc frame, which inherits this policy.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

WEB_DIR = Path(__file__).parent / "web"

router = APIRouter()


def _csp() -> str:
    from xuetu.evaluate.doc import CSS

    report_css = base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()
    return ("default-src 'self'; img-src 'self' data:; form-action 'none'; frame-ancestors 'none'; "
            f"style-src 'self' 'sha256-{report_css}'")


HEADERS = {"Content-Security-Policy": _csp(), "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


@router.get("/", include_in_schema=False)
async def index():
    return FileResponse(WEB_DIR / "index.html", media_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-cache", **HEADERS})


class _WithHeaders:
    """The static files with the page's security headers."""

    def __init__(self, app):
        self.app = app
        self.headers = [(k.lower().encode(), v.encode()) for k, v in HEADERS.items()]

    async def __call__(self, scope, receive, send):
        async def with_headers(message):
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.headers]
            await send(message)

        await self.app(scope, receive, with_headers)


def mount(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/app", _WithHeaders(StaticFiles(directory=WEB_DIR)), name="web")


def is_public(path: str) -> bool:
    """The page and its assets; the API behind them keeps its bearer auth."""
    return path == "/" or path.startswith("/app/")
