"""The Chroma vector store: embedded, on disk in one folder, the default for knowledge bases.

We always pass vectors ourselves: collections are made with embedding_function=None, because
Chroma's default one downloads an ONNX model on first use, and xuetu works offline. Telemetry is off.
Chroma's metadata is flat, so tags are `tag:<name>: True` keys (see xuetu/rag/filters.py).
"""

from __future__ import annotations

from xuetu.errors import XuetuError
from xuetu.rag.filters import Where, parse_where, tag_key
from xuetu.rag.stores import Hit, check_rows, flat_metadata

_DIMENSIONS = "xuetu:dimensions"
"""Collection metadata key: Chroma fixes a collection's dimension only at the first add; we check it at open."""
_PREFETCH = 200
"""Unfiltered hits fetched before falling back to Chroma's slower filtered search (see query)."""


class ChromaStore:
    def __init__(self, client, collection, dimensions: int):
        self._client = client
        self._collection = collection
        self.dimensions = dimensions

    def add(self, ids: list[str], vectors, texts: list[str], metadatas: list[dict]) -> None:
        array = check_rows(ids, vectors, texts, metadatas, self.dimensions)
        # Chroma refuses a batch over its limit (about 5,000 rows) instead of splitting it.
        step = self._client.get_max_batch_size()
        for i in range(0, len(ids), step):
            j = i + step
            self._collection.upsert(
                ids=list(ids[i:j]), embeddings=array[i:j], documents=list(texts[i:j]),
                # Chroma rejects an empty metadata dict but takes None for "no metadata".
                metadatas=[flat_metadata(m) or None for m in metadatas[i:j]],
            )

    def delete(self, ids: list[str]) -> None:
        step = self._client.get_max_batch_size()
        for i in range(0, len(ids), step):
            self._collection.delete(ids=list(ids[i:i + step]))

    def query(self, vector, k: int, where: dict | None = None) -> list[Hit]:
        flt = parse_where(where)
        if k < 1:
            return []
        if flt:
            # Chroma's filtered search took ~90 ms at 100k chunks (chromadb 1.5), an unfiltered one for 200
            # hits ~9 ms. So look among the nearest few hundred first: if k of them match, they are exactly
            # the filtered top k. Only a selective filter pays for Chroma's own `where`.
            n = max(_PREFETCH, 4 * k)
            nearest = self._search(vector, n, None)
            matching = [h for h in nearest if flt.matches(h.metadata)]
            if len(matching) >= k or len(nearest) < n:
                return matching[:k]
        return self._search(vector, k, chroma_where(flt))

    def _search(self, vector, k: int, where: dict | None) -> list[Hit]:
        r = self._collection.query(
            query_embeddings=[[float(x) for x in vector]], n_results=k, where=where,
            include=["documents", "metadatas", "distances"],
        )
        rows = zip(r["ids"][0], r["distances"][0], r["documents"][0], r["metadatas"][0])
        # Cosine distance is 1 - cosine similarity; Hits carry the similarity so that higher is better.
        return [Hit(id=i, score=1.0 - float(d), text=t or "", metadata=dict(m or {})) for i, d, t, m in rows]

    def count(self) -> int:
        return self._collection.count()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = self._collection = None

    def drop(self) -> None:
        self._client.delete_collection(self._collection.name)
        self.close()


def chroma_where(where: Where) -> dict | None:
    """Our filter as a Chroma `where`: $and / $or need two or more clauses, so single ones stand alone."""
    clauses = []
    if where.sources:
        clauses.append({"source": {"$in": list(where.sources)}})
    if where.tags:
        tags = [{tag_key(t): True} for t in where.tags]
        clauses.append(tags[0] if len(tags) == 1 else {"$or": tags})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def open(location: str, collection: str, dimensions: int) -> ChromaStore:  # noqa: A001 - the registry's name
    import chromadb
    from chromadb.config import Settings
    from chromadb.errors import ChromaError

    client = chromadb.PersistentClient(path=str(location), settings=Settings(anonymized_telemetry=False))
    try:
        col = client.get_or_create_collection(
            collection, embedding_function=None, configuration={"hnsw": {"space": "cosine"}},
            metadata={_DIMENSIONS: dimensions},
        )
    except (ChromaError, ValueError) as e:  # e.g. a name Chroma does not allow
        client.close()
        raise XuetuError(f"cannot open Chroma collection {collection!r} at {location}: {e}") from None
    have = (col.metadata or {}).get(_DIMENSIONS, dimensions)
    if have != dimensions:
        client.close()
        raise XuetuError(f"Chroma collection {collection!r} at {location} holds {have}-dimensional vectors, "
                         f"not {dimensions}", "Open it with the embedding model it was built with, or rebuild it.")
    return ChromaStore(client, col, dimensions)
