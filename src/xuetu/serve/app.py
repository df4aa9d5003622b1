"""The server: `create_app(ServeArgs)` builds the FastAPI app with both API families.

    xuetu serve --model smollm2:135m          # or: uvicorn --factory xuetu.serve.app:app_from_env
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError

from xuetu import __version__
from xuetu.home import xuetu_home
from xuetu.serve import health, origins, web
from xuetu.errors import XuetuError
from xuetu.runtime.manager import ModelManager
from xuetu.serve.args import ServeArgs
from xuetu.serve.errors import ApiError, api_error_handler, describe_validation, error_response
from xuetu.serve.metrics import Metrics
from xuetu.serve.middleware import BearerAuth, BodyLimit, Deadline, Observe, access_log
from xuetu.serve.origins import HostOriginCheck
from xuetu.serve.kb_routes import router as kb_router
from xuetu.serve.ollama.router import router as ollama_router
from xuetu.serve.openai.router import router as openai_router
from xuetu.serve.train_routes import router as train_router
from xuetu.serve.eval_routes import router as eval_router

log = logging.getLogger("xuetu.serve")


def _setup_access_log() -> None:
    path = xuetu_home() / "logs" / "access.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not any(getattr(h, "baseFilename", None) == str(path) for h in access_log.handlers):
        access_log.addHandler(logging.FileHandler(path, encoding="utf-8"))
    access_log.setLevel(logging.INFO)
    access_log.propagate = False


async def _validation_error(request: Request, exc: RequestValidationError):
    where, message = describe_validation(exc.errors())
    return error_response(request.url.path, 400, message, code="invalid_request", param=where or None)


def create_app(args: ServeArgs | None = None) -> FastAPI:
    args = args or ServeArgs()
    manager = ModelManager(args)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        manager.start()

        async def warm():
            try:
                await manager.preload()
                app.state.ready = True
            except Exception as e:  # stays not-ready; /ready says why
                app.state.startup_error = getattr(e, "message", str(e))
                log.error("preloading failed: %s", app.state.startup_error)

        task = asyncio.get_running_loop().create_task(warm())
        yield
        task.cancel()
        await manager.close()

    app = FastAPI(title="xuetu", version=__version__, lifespan=lifespan, docs_url="/docs", redoc_url=None)
    app.state.args, app.state.manager = args, manager
    app.state.metrics = Metrics(manager)
    app.state.ready, app.state.startup_error = False, None
    if args.access_log:
        _setup_access_log()
    from xuetu.safety import audit, policy
    from xuetu.serve.guarding import GuardMiddleware, Usage

    app.state.policy = policy.load(args.guard_policy)
    app.state.guard = None
    if args.guard:
        from xuetu.safety import Guard

        app.state.guard = Guard(app.state.policy)
    app.state.audit_path = audit.log_path(app.state.policy.audit_log)
    app.state.usage = Usage()

    app.add_exception_handler(ApiError, api_error_handler)
    app.add_exception_handler(XuetuError, api_error_handler)  # every domain error, mapped once (serve/errors.py)
    app.add_exception_handler(Exception, api_error_handler)  # a bug: 500 in the family's shape, logged
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.include_router(health.router)
    app.include_router(openai_router)
    app.include_router(ollama_router)
    app.include_router(kb_router)
    app.include_router(train_router)
    app.include_router(eval_router)
    web.mount(app)

    # add_middleware wraps: the last added is outermost. Observe > Host/Origin > CORS > body limit > auth >
    # guard > deadline > routes: every request, refused or not, is counted and logged; a foreign Host or Origin
    # is refused before anything else runs (a CORS preflight included); CORS headers reach 401s.
    app.add_middleware(Deadline, seconds=args.request_timeout)
    app.add_middleware(GuardMiddleware, state=app.state)
    app.add_middleware(BearerAuth, keys=args.api_keys)
    app.add_middleware(BodyLimit, limit=args.max_body_bytes, upload_limit=args.max_upload_bytes)
    if args.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=args.cors_origins, allow_methods=["*"], allow_headers=["*"])
    app.add_middleware(HostOriginCheck, hosts=_own_hosts(args), origins=args.cors_origins,
                       check_host=not args.api_keys or origins.is_loopback(origins.split_host(args.host)[0]))
    app.add_middleware(Observe, metrics=app.state.metrics, enabled_log=args.access_log)
    return app


def _own_hosts(args: ServeArgs) -> list[str]:
    """The hosts the operator allows, and the name the server binds (unless it binds every address)."""
    bound = origins.split_host(args.host)[0]
    return [*args.allowed_hosts, *([args.host] if bound not in ("0.0.0.0", "::", "") else [])]
