"""What an HTTP client may choose for a new knowledge base: only what the operator allowed at start.

    store      chroma, or qdrant: a folder under XUETU_HOME, or the server the operator named (--qdrant-url)
    location   refused unless inside a folder the operator listed (--kb-location); never a URL
    embedder   the default, or a model already in the store (nothing is pulled, no server path is read)
    reranker   a model already in the store
"""

from __future__ import annotations

from pathlib import Path

from xuetu.errors import ModelNotFound, NotAllowed, XuetuError

STORED_ONLY = "Over HTTP a knowledge base uses the default embedder or a model already in the store (GET /api/tags); " \
              "pull others on the server with `xuetu pull`."


def allowed_settings(store: str, location: str | None, embedder: str | None, reranker: str | None,
                     qdrant_url: str | None, kb_locations: list[str]) -> dict:
    """kb.create's store, location, embedder and reranker for this request; NotAllowed names what is allowed."""
    return {"store": store, "location": _location(store, location, qdrant_url, kb_locations),
            "embedder": _stored_model(embedder, "embedder"), "reranker": _stored_model(reranker, "reranker")}


def _location(store: str, location: str | None, qdrant_url: str | None, kb_locations: list[str]) -> str | None:
    if location is None:
        return qdrant_url if store == "qdrant" else None
    if "://" in location:
        raise NotAllowed("location cannot be a URL over HTTP",
                         'Send "store": "qdrant" without a location to use the Qdrant server the operator set '
                         "(xuetu serve --qdrant-url)." if qdrant_url else
                         "This server has no Qdrant server (xuetu serve --qdrant-url); leave location out.")
    path = Path(location)
    for root in kb_locations:
        base = Path(root).resolve()
        if path.is_absolute() and path.resolve().is_relative_to(base):
            return str(path.resolve())
    allowed = ", ".join(kb_locations)
    raise NotAllowed(f"location {location!r} is not one this server allows",
                     "Leave location out (the knowledge base lives under XUETU_HOME)"
                     + (f", or name a folder inside one of: {allowed}." if allowed else
                        "; the operator can allow folders with xuetu serve --kb-location DIR."))


def _stored_model(name: str | None, role: str) -> str | None:
    from xuetu import models
    from xuetu.models.aliases import DEFAULT_EMBEDDER

    if name is None or (role == "embedder" and name == DEFAULT_EMBEDDER):
        return name
    if name.startswith((".", "/", "~", "\\")) or "://" in name:
        raise NotAllowed(f"{role} {name!r} is a path or URL", STORED_ONLY)
    try:
        return models.resolve(name).name  # no pull_missing: only what is stored (or embedded in the package)
    except ModelNotFound:
        raise NotAllowed(f"{role} {name!r} is not in the store", STORED_ONLY) from None
    except XuetuError as e:
        raise NotAllowed(f"{role} {name!r}: {e.message}", STORED_ONLY) from None
