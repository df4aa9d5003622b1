"""Ollama's error shape: {"error": "message"}, for responses and for a line of a stream (the HTTP status
carries the kind). Which status a domain error gets is decided once, in serve/errors.py."""

from __future__ import annotations


def error_body(message: str, type: str, code: str | None, param: str | None) -> dict:
    return {"error": message}
