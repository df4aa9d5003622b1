"""Embeddings from a remote model (DashScope text-embedding-v3, OpenAI text-embedding-3, any /v1/embeddings),
with the same interface as SentenceEmbedder, so knowledge bases and `/v1/embeddings` take either.

Every vector is cached on disk by the hash of its text (XUETU_HOME/cache/embeddings, one SQLite file per
provider and model): re-ingesting a file, or a file with a few edited paragraphs, calls the API only for text
it has not embedded before. Requests go in the provider's batch size, through the remote engine's retries.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading

import numpy as np

from xuetu.engines.remote import RemoteClient, estimate_tokens, remote_spec
from xuetu.errors import UpstreamError, XuetuError
from xuetu.models.ref import ModelRef

MAX_TOKENS = 8192
"""What the common providers' embedding models read (DashScope v3, OpenAI text-embedding-3: 8k)."""


class EmbeddingCache:
    """text hash -> float32 vector, one SQLite file per provider URL and model."""

    def __init__(self, url: str, model: str):
        from xuetu.home import xuetu_home

        folder = xuetu_home() / "cache" / "embeddings"
        folder.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha256(f"{url}\n{model}".encode()).hexdigest()[:24]
        self.db = sqlite3.connect(folder / f"{name}.sqlite", check_same_thread=False)
        self.db.execute("CREATE TABLE IF NOT EXISTS v (h TEXT PRIMARY KEY, vec BLOB)")
        self.lock = threading.Lock()

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def get(self, keys: list[str]) -> dict[str, list[float]]:
        found = {}
        with self.lock:
            for i in range(0, len(keys), 500):
                part = keys[i:i + 500]
                rows = self.db.execute(f"SELECT h, vec FROM v WHERE h IN ({','.join('?' * len(part))})", part)
                found.update({h: np.frombuffer(b, dtype="<f4").tolist() for h, b in rows})
        return found

    def put(self, items: dict[str, list[float]]) -> None:
        with self.lock, self.db:
            self.db.executemany("INSERT OR REPLACE INTO v VALUES (?, ?)",
                                [(k, np.asarray(v, dtype="<f4").tobytes()) for k, v in items.items()])

    def close(self) -> None:
        self.db.close()


class RemoteEmbedder:
    remote = True

    def __init__(self, ref: ModelRef):
        if ref.kind != "embedding":
            raise XuetuError(f"{ref.name} is a remote chat model, not an embedding model",
                             "Create one with `xuetu create NAME --preset dashscope --embedding`.")
        self.ref = ref
        self.spec = remote_spec(ref)
        self.client = RemoteClient(self.spec)
        self.cache = EmbeddingCache(self.spec.url, self.spec.model)
        self.max_tokens = self.spec.context_length or MAX_TOKENS
        self.requests = 0
        """Requests sent to the provider by this embedder (the cache answers the rest)."""
        self._dimensions: int | None = None

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [estimate_tokens(t) for t in texts]

    def count_text_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    def _call(self, texts: list[str]) -> tuple[list[list[float]], int]:
        response = self.client.post("embeddings", {"model": self.spec.model, "input": texts,
                                                   "encoding_format": "float"})
        self.requests += 1
        try:
            data = response.json()
            rows = sorted(data["data"], key=lambda r: r.get("index", 0))
            vectors = [list(map(float, r["embedding"])) for r in rows]
        except (ValueError, KeyError, TypeError) as e:
            raise UpstreamError(f"{self.spec.label} sent an embeddings reply xuetu cannot read ({type(e).__name__})",
                                "Check that --api-model names an embedding model.") from None
        if len(vectors) != len(texts):
            raise UpstreamError(f"{self.spec.label} returned {len(vectors)} vectors for {len(texts)} texts")
        used = (data.get("usage") or {}).get("prompt_tokens") or sum(self.count_tokens(texts))
        return vectors, int(used)

    def embed(self, texts: list[str], truncate: bool = True, batch_size: int | None = None,
              progress: bool = False) -> tuple[list[list[float]], int]:
        """Unit-length vectors for texts (cached ones from disk), and the tokens the provider counted."""
        keys = [self.cache.key(t) for t in texts]
        found = self.cache.get(list(dict.fromkeys(keys)))
        todo = list(dict.fromkeys(t for t, k in zip(texts, keys) if k not in found))
        size = max(1, min(batch_size or self.spec.batch, self.spec.batch))
        batches = [todo[i:i + size] for i in range(0, len(todo), size)]
        tokens = 0
        bar = None
        if progress and batches:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(todo), desc=f"embedding at {self.spec.label}", unit="text")
        for batch in batches:
            vectors, used = self._call(batch)
            tokens += used
            fresh = {self.cache.key(t): _unit(v) for t, v in zip(batch, vectors)}
            self.cache.put(fresh)
            found.update(fresh)
            if bar is not None:
                bar.update(len(batch))
        if bar is not None:
            bar.close()
        return [found[k] for k in keys], tokens

    @property
    def dimensions(self) -> int:
        if self._dimensions is None:  # one probe, cached like any text
            self._dimensions = len(self.embed(["dimensions"])[0][0])
        return self._dimensions

    def close(self) -> None:
        self.client.close()
        self.cache.close()


def _unit(v: list[float]) -> list[float]:
    a = np.asarray(v, dtype=np.float64)
    n = np.linalg.norm(a)
    return (a / n).tolist() if n > 0 else a.tolist()
