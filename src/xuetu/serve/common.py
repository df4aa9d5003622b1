"""Small helpers the routers share."""

from __future__ import annotations

import re

from fastapi import Request


def wants_wait(request: Request) -> bool:
    """False when the client sent `Prefer: wait=0` (RFC 7240): answer 503 instead of waiting for a load."""
    return not re.search(r"\bwait\s*=\s*0\b", request.headers.get("prefer", ""))
