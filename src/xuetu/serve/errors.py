"""API errors, shaped per family: OpenAI's {"error": {message, type, code, param}} under /v1,
Ollama's {"error": "..."} elsewhere."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse


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


def bad_request(message: str, param: str | None = None) -> ApiError:
    return ApiError(400, message, code="invalid_request", param=param)


def model_not_found(name: str, hint: str | None = None) -> ApiError:
    msg = f"model '{name}' not found" + (f". {hint}" if hint else "")
    return ApiError(404, msg, code="model_not_found", param="model")


def to_api_error(e: Exception, param: str | None = None) -> ApiError:
    """The one mapping of domain errors to HTTP: not found 404, conflict 409, not allowed 403, the rest 400."""
    from xuetu.errors import Conflict, ModelNotFound, NotAllowed

    message, hint = e.message, getattr(e, "hint", None)
    if hint:
        message += ("" if message.endswith((".", "?", "!")) else ".") + " " + hint
    if isinstance(e, ModelNotFound):
        return ApiError(404, message, code="model_not_found", param=param)
    if isinstance(e, Conflict):
        return ApiError(409, message, code="conflict", param=param)
    if isinstance(e, NotAllowed):
        return ApiError(403, message, type="permission_error", code="not_allowed", param=param)
    return bad_request(message, param)


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


def error_response(request_path: str, status: int, message: str, type: str = "invalid_request_error",
                   code: str | None = None, param: str | None = None, headers: dict | None = None) -> JSONResponse:
    if is_openai_path(request_path):
        body = {"error": {"message": message, "type": type, "param": param, "code": code}}
    else:
        body = {"error": message}
    return JSONResponse(body, status_code=status, headers=headers)


async def api_error_handler(request: Request, exc: ApiError) -> JSONResponse:
    return error_response(request.url.path, exc.status, exc.message, exc.type, exc.code, exc.param, exc.headers)
