"""Vector stores behind one small interface: Chroma (embedded, the default) and Qdrant (local or a server).

A store holds, per chunk: an id, a unit-length vector, the chunk text and flat metadata
(str/int/float/bool values). Filters are `{"source": [...], "tags": [...]}`: a chunk matches when
its source is one of the sources and it carries at least one of the tags; tags live in metadata as
`tag:<name>: True` (xuetu/rag/filters.py says it in full).

Each store is one module with `open(location, collection, dimensions) -> VectorStore`, registered
here with one line; `open_store` imports it only when asked, so Chroma and Qdrant load on demand.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Protocol

from xuetu.errors import XuetuError


@dataclass
class Hit:
    id: str
    score: float
    """Higher is better (cosine similarity for dense stores)."""
    text: str
    metadata: dict = field(default_factory=dict)


class VectorStore(Protocol):
    def add(self, ids: list[str], vectors: list[list[float]], texts: list[str], metadatas: list[dict]) -> None:
        """Insert or replace chunks (an id already present is overwritten)."""
    def delete(self, ids: list[str]) -> None: ...
    def query(self, vector: list[float], k: int, where: dict | None = None) -> list[Hit]:
        """The k nearest chunks that match `where`, best first; score is cosine similarity."""
    def count(self) -> int: ...
    def close(self) -> None:
        """Release files and locks; the store is unusable afterwards."""
    def drop(self) -> None:
        """Delete the whole collection, then close."""


_STORES: dict[str, str] = {}


def register(name: str, module: str) -> None:
    _STORES[name] = module


register("chroma", "xuetu.rag.stores.chroma")
register("qdrant", "xuetu.rag.stores.qdrant")


def names() -> list[str]:
    return sorted(_STORES)


def open_store(kind: str, location: str, collection: str, dimensions: int) -> VectorStore:
    """Open (creating if needed) `collection` in the store `kind` at `location`.

    `location` is a folder for embedded stores; Qdrant also takes an http(s):// server URL.
    """
    if kind not in _STORES:
        raise XuetuError(f"unknown vector store {kind!r}", f"Choose one of: {', '.join(names())}.")
    return importlib.import_module(_STORES[kind]).open(location, collection, dimensions)


def check_rows(ids: list[str], vectors, texts: list[str], metadatas: list[dict], dimensions: int):
    """Validate one `add` call for any store; returns the vectors as a float32 array (n, dimensions).

    Both stores would fail on these too, but deep inside their clients and in their own words.
    """
    import numpy as np

    if not len(ids) == len(vectors) == len(texts) == len(metadatas):
        raise XuetuError(f"add() got {len(ids)} ids, {len(vectors)} vectors, {len(texts)} texts and "
                         f"{len(metadatas)} metadatas; they must be equally many")
    array = np.asarray(vectors, dtype=np.float32).reshape(len(ids), -1)  # (n, dimensions)
    if len(ids) and array.shape[1] != dimensions:
        raise XuetuError(f"vectors have {array.shape[1]} dimensions, the collection holds {dimensions}",
                         "A knowledge base keeps the embedding model it was created with.")
    for m in metadatas:
        for key, value in m.items():
            if value is not None and not isinstance(value, (str, int, float, bool)):
                raise XuetuError(f"metadata {key!r} must be a str, int, float or bool, got {type(value).__name__}")
    return array


def flat_metadata(metadata: dict) -> dict:
    """The metadata without None values (no store keeps a null)."""
    return {k: v for k, v in metadata.items() if v is not None}
