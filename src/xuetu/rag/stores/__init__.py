"""Vector stores behind one small interface: Chroma (embedded, the default) and Qdrant (local or a server).

A store holds, per chunk: an id, a unit-length vector, the chunk text and flat metadata
(str/int/float/bool values). Filters are `{"source": [...], "tags": [...]}`: a chunk matches when
its source is one of the sources and it carries at least one of the tags.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Protocol


@dataclass
class Hit:
    id: str
    score: float
    """Higher is better (cosine similarity for dense stores)."""
    text: str
    metadata: dict = field(default_factory=dict)


class VectorStore(Protocol):
    def add(self, ids: list[str], vectors: list[list[float]], texts: list[str], metadatas: list[dict]) -> None: ...
    def delete(self, ids: list[str]) -> None: ...
    def query(self, vector: list[float], k: int, where: dict | None = None) -> list[Hit]: ...
    def count(self) -> int: ...
    def close(self) -> None: ...


_STORES: dict[str, str] = {}


def register(name: str, module: str) -> None:
    _STORES[name] = module


register("chroma", "xuetu.rag.stores.chroma")
register("qdrant", "xuetu.rag.stores.qdrant")


def names() -> list[str]:
    return sorted(_STORES)
