"""API errors, shaped per family: OpenAI's {"error": {message, type, code, param}} under /v1,
Ollama's {"error": "..."} elsewhere."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse


DEFAULT_CODES = {400: "invalid_request", 401: "invalid_api_key", 404: "not_found", 413: "request_too_large",
                 429: "rate_limit_exceeded", 500: "internal_error", 502: "upstream_error", 503: "unavailable"}


class ApiError(Exception):
    def __init__(self, status: int, message: str, type: str = "invalid_request_error", code: str | None = None,
                 param: str | None = None, headers: dict | None = None):
        super().__init__(message)
        code = code or DEFAULT_CODES.get(status)
        self.status, self.message, self.type, self.code, self.param = status, message, type, code, param
        self.headers = headers or {}


def raw_body(description: str) -> dict:
    """`openapi_extra` for a route that reads the raw request bytes itself: declares the body in /openapi.json."""
    return {"requestBody": {"required": True, "description": description,
                            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}


def bad_request(message: str, param: str | None = None) -> ApiError:
    return ApiError(400, message, code="invalid_request", param=param)


def model_not_found(name: str, hint: str | None = None) -> ApiError:
    msg = f"model '{name}' not found" + (f". {hint}" if hint else "")
    return ApiError(404, msg, code="model_not_found", param="model")


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
