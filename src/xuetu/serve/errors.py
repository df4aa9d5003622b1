"""Errors at the HTTP edge: the one mapping of domain errors (xuetu.errors) to status codes and error codes
(`to_api_error`), bodies in the shape of the API family that owns the path (openai/errors.py under /v1,
ollama/errors.py elsewhere), and the app's exception handler. Routes raise domain errors; nothing here
reads an error's text to decide what it is."""

from __future__ import annotations

import logging

from fastapi import Request
from fastapi.responses import JSONResponse

from xuetu.errors import XuetuError

log = logging.getLogger("xuetu.serve")


DEFAULT_CODES = {400: "invalid_request", 401: "invalid_api_key", 404: "not_found", 413: "request_too_large",
                 429: "rate_limit_exceeded", 500: "internal_error", 502: "upstream_error", 503: "unavailable",
                 504: "timeout"}


class ApiError(Exception):
    def __init__(self, status: int, message: str, type: str = "invalid_request_error", code: str | None = None,
                 param: str | None = None, headers: dict | None = None):
        message = scrub_paths(message)
        super().__init__(message)
        code = code or DEFAULT_CODES.get(status)
        self.status, self.message, self.type, self.code, self.param = status, message, type, code, param
        self.headers = headers or {}


def scrub_paths(message: str) -> str:
    """A client never learns where the server keeps its files: XUETU_HOME and the user's home are named, not shown."""
    from pathlib import Path

    from xuetu.home import xuetu_home

    for path, name in ((str(xuetu_home().resolve()), "$XUETU_HOME"), (str(xuetu_home()), "$XUETU_HOME"),
                       (str(Path.home()), "~")):
        if len(path) > 1:
            message = message.replace(path, name)
    return message


def raw_body(description: str) -> dict:
    """`openapi_extra` for a route that reads the raw request bytes itself: declares the body in /openapi.json."""
    return {"requestBody": {"required": True, "description": description,
                            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}


# The one mapping of domain errors to HTTP, most specific first: (type, status, error type)
STATUS: list[tuple[type, int, str]] = []


def _statuses() -> list[tuple[type, int, str]]:
    if not STATUS:
        from xuetu.errors import (BadInput, Busy, Conflict, DownloadError, NotAllowed, NotFound, RateLimited,
                                  TooLarge, Unavailable, UpstreamError)

        STATUS.extend([
            (BadInput, 400, "invalid_request_error"),
            (NotFound, 404, "invalid_request_error"),
            (Conflict, 409, "invalid_request_error"),
            (NotAllowed, 403, "permission_error"),
            (TooLarge, 413, "invalid_request_error"),
            (RateLimited, 429, "rate_limit_error"),  # this caller: too much at once, or too much today
            (Busy, 503, "server_error"),  # the server as a whole: loading, or every slot in use
            (DownloadError, 502, "upstream_error"),  # a hub that failed us
            (UpstreamError, 502, "upstream_error"),  # a remote model's provider that failed us
            (Unavailable, 503, "server_error"),
        ])
    return STATUS


def to_api_error(e: Exception, param: str | None = None) -> ApiError:
    """A domain error as HTTP: its status, error type and code by its type alone, the message with its hint.
    Anything that is not a domain error is a bug: 500, named by its type (its text may say too much)."""
    from xuetu.errors import ModelNotFound, XuetuError

    if isinstance(e, ApiError):
        return e
    if not isinstance(e, XuetuError):
        return ApiError(500, f"internal error ({type(e).__name__}); see the server log", type="server_error")
    status, kind = 400, "invalid_request_error"  # a plain XuetuError is bad input
    for cls, s, k in _statuses():  # the most specific match wins
        if isinstance(e, cls):
            status, kind = s, k
            break
    message = _model_message(e) if isinstance(e, ModelNotFound) and e.name else e.full()
    headers = {"Retry-After": str(max(1, round(e.retry_after)))} if hasattr(e, "retry_after") else None
    return ApiError(status, message, type=kind, code=e.code, param=e.param or param, headers=headers)


def _model_message(e) -> str:
    """Ollama's words for a model that is not there; a near name when one is close."""
    from xuetu.errors import ModelNotPulled

    if isinstance(e, ModelNotPulled):
        return f"model '{e.name}' not found, try pulling it first (POST /api/pull, or `xuetu pull {e.name}`)"
    near = f". Did you mean {' or '.join(e.suggestions)}?" if e.suggestions else ""
    return f"model '{e.name}' not found{near}"


def _field_path(loc) -> str:
    """`body.stop.list[constrained-str].0` -> `stop.0`: the request's own names, without pydantic's union branch tags."""
    def tag(x) -> bool:
        return isinstance(x, str) and (x == "body" or any(c in x for c in "[-") or x[:1].isupper()
                                       or x in ("str", "int", "float", "bool", "list", "dict"))
    return ".".join(str(x) for x in loc if not tag(x))


def describe_validation(errors: list[dict]) -> tuple[str, str]:
    """The one error worth telling a client about, as (field, message). In a union (a string or a list of
    strings), the branch that had the right type says what is wrong, not the branch whose type did not fit."""
    if not errors:
        return "", "invalid request"
    if errors[0].get("type") == "json_invalid":
        return "", "the request body is not valid JSON"
    meaningful = [e for e in errors if not str(e.get("type", "")).endswith("_type")]
    if meaningful:
        first = meaningful[0]
        message = first.get("msg", "invalid value")
    else:  # no branch had the right type: name every type that would do
        first = errors[0]
        here = [e for e in errors if _field_path(e.get("loc", ())) == _field_path(first.get("loc", ()))]
        kinds = list(dict.fromkeys(e.get("msg", "").removeprefix("Input should be ") for e in here))
        message = "Input should be " + " or ".join(kinds)
    where = _field_path(first.get("loc", ()))
    return where, f"{where}: {message}" if where else message


def is_openai_path(path: str) -> bool:
    return path.startswith("/v1/") or path == "/v1"


def error_body(request_path: str, message: str, type: str = "invalid_request_error", code: str | None = None,
               param: str | None = None) -> dict:
    """The body in the shape of the API family that owns the path: OpenAI's under /v1, Ollama's elsewhere."""
    from xuetu.serve.ollama.errors import error_body as ollama
    from xuetu.serve.openai.errors import error_body as openai

    return (openai if is_openai_path(request_path) else ollama)(message, type, code, param)


def error_response(request_path: str, status: int, message: str, type: str = "invalid_request_error",
                   code: str | None = None, param: str | None = None, headers: dict | None = None) -> JSONResponse:
    return JSONResponse(error_body(request_path, message, type, code, param), status_code=status, headers=headers)


def stream_error(request_path: str, e: Exception) -> dict:
    """What a stream sends in place of the rest of its answer when it fails part-way."""
    err = to_api_error(e)
    return error_body(request_path, err.message, err.type, err.code, err.param)


async def api_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """The app's handler for ApiError, every domain error and anything else a route lets through."""
    if not isinstance(exc, ApiError | XuetuError):
        log.exception("unhandled error on %s", request.url.path, exc_info=exc)
    err = to_api_error(exc)
    return error_response(request.url.path, err.status, err.message, err.type, err.code, err.param, err.headers)
