"""Request bodies that are files (knowledge-base documents, datasets), streamed to disk as they arrive, so an
upload costs the server a file, not its size in memory. BodyLimit (middleware.py) stops one at its cap."""

from __future__ import annotations

from pathlib import Path

from fastapi import Request


async def receive(request: Request, dest: Path) -> int:
    """Write the body to `dest` piece by piece; returns its size. A client that goes away leaves no file."""
    size = 0
    try:
        with open(dest, "wb") as f:
            async for piece in request.stream():
                f.write(piece)  # at most one network read (tens of kB) per write
                size += len(piece)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return size
