"""The Qdrant vector store: local mode in a folder (no server needed) or a Qdrant server by URL.

Qdrant point ids must be UUIDs or integers, so a chunk id maps to uuid5(its id), always the same
UUID, and the original id stays in the payload. The payload is {"id", "text", "metadata", "source",
"tags"}: `metadata` is returned as given; `source` and `tags` (a list) are copies to filter on,
because Qdrant reads a key like "tag:draft" as a path and refuses the colon.

Local mode holds a file lock on its folder until close(); a second client on that folder fails.
It scans vectors exactly (no index), which suits small bases; use a server past ~20,000 chunks.
"""

from __future__ import annotations

import uuid

from xuetu.errors import XuetuError
from xuetu.rag.filters import Where, parse_where, tags_of
from xuetu.rag.stores import Hit, check_rows, flat_metadata

_BATCH = 1000
"""Points per upsert: keeps request bodies (server) and temporary copies (local) small."""
_NAMESPACE = uuid.UUID("6f3c3a52-8b0e-4f43-9d55-0d0f6f1b7a21")
"""Fixed, so the same chunk id gives the same point id in every run and every store."""


def point_id(chunk_id: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, chunk_id))


class QdrantStore:
    def __init__(self, client, collection: str, dimensions: int):
        self._client = client
        self.collection = collection
        self.dimensions = dimensions

    def add(self, ids: list[str], vectors, texts: list[str], metadatas: list[dict]) -> None:
        from qdrant_client import models

        array = check_rows(ids, vectors, texts, metadatas, self.dimensions)
        for i in range(0, len(ids), _BATCH):
            points = [
                models.PointStruct(id=point_id(cid), vector=vec.tolist(), payload=_payload(cid, text, meta))
                for cid, vec, text, meta in zip(ids[i:i + _BATCH], array[i:i + _BATCH],
                                                texts[i:i + _BATCH], metadatas[i:i + _BATCH])
            ]
            self._client.upsert(self.collection, points=points, wait=True)

    def delete(self, ids: list[str]) -> None:
        from qdrant_client import models

        for i in range(0, len(ids), _BATCH):
            selector = models.PointIdsList(points=[point_id(c) for c in ids[i:i + _BATCH]])
            self._client.delete(self.collection, points_selector=selector, wait=True)

    def query(self, vector, k: int, where: dict | None = None) -> list[Hit]:
        if k < 1:
            return []
        r = self._client.query_points(
            self.collection, query=[float(x) for x in vector], limit=k,
            query_filter=qdrant_filter(parse_where(where)), with_payload=True,
        )
        return [Hit(id=p.payload["id"], score=float(p.score), text=p.payload.get("text", ""),
                    metadata=dict(p.payload.get("metadata", {}))) for p in r.points]

    def count(self) -> int:
        return self._client.count(self.collection, exact=True).count

    def close(self) -> None:
        if self._client is not None:
            self._client.close()  # releases local mode's folder lock
            self._client = None

    def drop(self) -> None:
        self._client.delete_collection(self.collection)
        self.close()


def _payload(chunk_id: str, text: str, metadata: dict) -> dict:
    meta = flat_metadata(metadata)
    return {"id": chunk_id, "text": text, "metadata": meta, "source": meta.get("source"), "tags": tags_of(meta)}


def qdrant_filter(where: Where):
    """Our filter as a Qdrant Filter; MatchAny on a list field means "shares at least one value"."""
    from qdrant_client import models

    must = []
    if where.sources:
        must.append(models.FieldCondition(key="source", match=models.MatchAny(any=list(where.sources))))
    if where.tags:
        must.append(models.FieldCondition(key="tags", match=models.MatchAny(any=list(where.tags))))
    return models.Filter(must=must) if must else None


def open(location: str, collection: str, dimensions: int) -> QdrantStore:  # noqa: A001 - the registry's name
    from qdrant_client import QdrantClient, models

    location = str(location)
    server = location.startswith(("http://", "https://"))
    try:
        client = QdrantClient(url=location) if server else QdrantClient(path=location)
    except RuntimeError as e:  # local mode: another client holds the folder's lock
        raise XuetuError(f"cannot open the Qdrant folder {location}: {e}",
                         "Close the other xuetu process using this knowledge base, or run a Qdrant server.") from None
    try:
        if not client.collection_exists(collection):
            client.create_collection(collection, vectors_config=models.VectorParams(
                size=dimensions, distance=models.Distance.COSINE))
        have = client.get_collection(collection).config.params.vectors.size
    except Exception as e:  # noqa: BLE001 - a server that is down or refuses: say where, then stop
        client.close()
        raise XuetuError(f"cannot open Qdrant collection {collection!r} at {location}: {e}") from None
    if have != dimensions:
        client.close()
        raise XuetuError(f"Qdrant collection {collection!r} at {location} holds {have}-dimensional vectors, "
                         f"not {dimensions}", "Open it with the embedding model it was built with, or rebuild it.")
    return QdrantStore(client, collection, dimensions)
