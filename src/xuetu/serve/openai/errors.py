"""OpenAI's error shape: {"error": {"message", "type", "param", "code"}}, for responses and stream events.
Which status and code a domain error gets is decided once, in serve/errors.py."""

from __future__ import annotations


def error_body(message: str, type: str, code: str | None, param: str | None) -> dict:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}
