"""A knowledge base on disk: its manifest, its chunk files, its vector store and its BM25 index.

    XUETU_HOME/kb/<name>/
        manifest.json       settings and the documents (source -> content hash, chunk ids): the commit point
        chunks/<key>.jsonl  each document's chunks (text + metadata), written before the store sees them
        chroma/ | qdrant/   the vector store (or a Qdrant server named by `location`)
        bm25/               the BM25 index, rebuilt from the chunk files when it is stale

A document is in the knowledge base exactly when the manifest says so. Anything else on disk or in the
store (left by an interrupted ingestion) is an orphan: queries ignore it and the next write removes it.
"""

from __future__ import annotations

import fcntl
import hashlib
import re
import shutil
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from xuetu.errors import Conflict, NotFound, XuetuError
from xuetu.home import atomic_write_json, xuetu_home

_NAME = re.compile(r"^[A-Za-z0-9\u4e00-\u9fff][A-Za-z0-9_.\-\u4e00-\u9fff]{0,63}$")
DEFAULT_STORE = "chroma"


def kb_root() -> Path:
    return xuetu_home() / "kb"


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise XuetuError(f"invalid knowledge-base name {name!r}",
                         "Use letters, digits, Chinese characters, '-', '_' or '.', starting with a letter or digit.")
    return name


@dataclass
class Settings:
    name: str
    embedder: str
    """The sentence-transformers model that embeds chunks and questions (a store name or alias)."""
    store: str = DEFAULT_STORE
    """chroma (embedded, the default) or qdrant."""
    location: str | None = None
    """For qdrant: a server URL; None keeps a local Qdrant folder inside the knowledge base."""
    chunk_size: int = 200
    """Tokens per chunk, counted by the embedder's tokenizer."""
    overlap: int = 32
    """Tokens shared by consecutive chunks of the same section."""
    reranker: str | None = None
    """An optional cross-encoder (a local folder or a hub name) that reorders the fused results."""
    dimensions: int = 0
    created: float = field(default_factory=time.time)


def content_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def chunk_key(source: str, digest: str) -> str:
    return f"{hashlib.sha1(source.encode()).hexdigest()[:16]}-{digest[:16]}"


_locks: dict[str, threading.Lock] = {}


class KnowledgeBase:
    def __init__(self, path: Path, manifest: dict):
        self.path = path
        self.manifest = manifest
        self.settings = Settings(**manifest["settings"])
        self._store = None
        self._bm25 = None
        self._embedder = None
        self._stamp = 0

    # -- the manifest ------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def documents(self) -> dict[str, dict]:
        """source -> {"hash", "key", "chunks", "size", "added", "tags"}"""
        return self.manifest["documents"]

    def fingerprint(self) -> str:
        """Changes whenever the set of live documents does: tells a stale BM25 index from a fresh one."""
        live = sorted(f"{s}\0{d['hash']}" for s, d in self.documents.items())
        return hashlib.sha1("\n".join(live).encode()).hexdigest()

    def commit(self) -> None:
        atomic_write_json(self.path / "manifest.json", self.manifest)
        self._stamp = (self.path / "manifest.json").stat().st_mtime_ns

    def chunk_file(self, key: str) -> Path:
        return self.path / "chunks" / f"{key}.jsonl"

    def read_chunks(self, source: str) -> list[dict]:
        doc = self.documents[source]
        return [orjson.loads(line) for line in self.chunk_file(doc["key"]).read_bytes().splitlines() if line]

    def find_document(self, doc: str) -> str:
        """The source a user means by DOC: its exact name, else a unique name ending in it."""
        if doc in self.documents:
            return doc
        hits = [s for s in self.documents if s.endswith("/" + doc) or Path(s).name == doc]
        if len(hits) == 1:
            return hits[0]
        if not hits:
            raise NotFound(f"knowledge base {self.name!r} has no document {doc!r}",
                           f"See its documents with: xuetu kb show {self.name}")
        raise XuetuError(f"{doc!r} matches several documents: {', '.join(sorted(hits))}", "Give the full name.")

    # -- the parts, opened on first use -----------------------------------------------------------
    @property
    def store(self):
        if self._store is None:
            from xuetu.rag.stores import open_store

            s = self.settings
            location = s.location or str(self.path / s.store)
            self._store = open_store(s.store, location, _collection(s.name), s.dimensions)
        return self._store

    @property
    def embedder(self):
        if self._embedder is None:
            self._embedder = load_embedder(self.settings.embedder)
        return self._embedder

    @property
    def bm25(self):
        """The BM25 index over the live chunks, rebuilt first if documents changed since it was built."""
        from xuetu.rag.bm25 import BM25Index

        folder = self.path / "bm25"
        want = self.fingerprint()
        if self._bm25 is not None and self._bm25[0] == want:
            return self._bm25[1]
        stamp = folder / "fingerprint"
        if folder.is_dir() and stamp.is_file() and stamp.read_text().strip() == want:
            index = BM25Index.load(folder)
        else:
            ids, texts, metas = [], [], []
            for source in sorted(self.documents):
                for c in self.read_chunks(source):
                    ids.append(c["id"])
                    texts.append(c["text"])
                    metas.append(c["metadata"])
            index = BM25Index.build(ids, texts, metas)
            index.save(folder)
            (folder / "fingerprint").write_text(want)
        self._bm25 = (want, index)
        return index

    def is_live(self, metadata: dict) -> bool:
        doc = self.documents.get(metadata.get("source"))
        return doc is not None and doc["hash"].startswith(str(metadata.get("doc_hash", "-")))

    @contextmanager
    def writing(self):
        """Exclusive write access across threads and processes; orphans from an interrupted run go first."""
        lock = _locks.setdefault(str(self.path), threading.Lock())
        with lock, open(self.path / ".lock", "a+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                self._reload()
                self.remove_orphans()
                yield self
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _reload(self) -> None:
        self.manifest = orjson.loads((self.path / "manifest.json").read_bytes())

    def refresh(self) -> None:
        """Re-read the manifest if another writer changed it since (cheap: one stat)."""
        stamp = (self.path / "manifest.json").stat().st_mtime_ns
        if stamp != self._stamp:
            self._reload()
            self._stamp = stamp

    def remove_orphans(self) -> None:
        live = {d["key"] for d in self.documents.values()}
        folder = self.path / "chunks"
        for f in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
            if f.stem not in live:
                ids = [orjson.loads(line)["id"] for line in f.read_bytes().splitlines() if line]
                if ids:
                    self.store.delete(ids)
                f.unlink()
        for tmp in folder.glob(".*.tmp") if folder.is_dir() else []:
            tmp.unlink(missing_ok=True)

    def summary(self) -> dict:
        s = self.settings
        return {"name": s.name, "embedder": s.embedder, "store": s.store, "location": s.location,
                "chunk_size": s.chunk_size, "overlap": s.overlap, "reranker": s.reranker, "created": s.created,
                "documents": len(self.documents), "chunks": sum(d["chunks"] for d in self.documents.values()),
                "bytes": sum(d["size"] for d in self.documents.values())}

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


def _collection(name: str) -> str:
    """Store collection names allow fewer characters than ours: a readable prefix plus a hash."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", name)[:40]
    return f"xuetu_{safe}_{hashlib.sha1(name.encode()).hexdigest()[:8]}"


_EMBEDDERS: dict[str, object] = {}
_EMBEDDERS_LOCK = threading.Lock()


def load_embedder(name: str):
    """One SentenceEmbedder per model per process (the server shares it across knowledge bases)."""
    from xuetu import models
    from xuetu.engines.embedder import open_embedder

    with _EMBEDDERS_LOCK:
        if name not in _EMBEDDERS:
            _EMBEDDERS[name] = open_embedder(models.resolve(name, pull_missing=True))
        return _EMBEDDERS[name]


# -- the collection of knowledge bases ----------------------------------------------------------------
def create(name: str, embedder: str | None = None, store: str = DEFAULT_STORE, location: str | None = None,
           chunk_size: int = 200, overlap: int = 32, reranker: str | None = None) -> KnowledgeBase:
    from xuetu.models.aliases import DEFAULT_EMBEDDER
    from xuetu.rag.stores import names as store_names

    check_name(name)
    if store not in store_names():
        raise XuetuError(f"unknown store {store!r}", f"Choose one of: {', '.join(store_names())}.")
    if not (isinstance(chunk_size, int) and chunk_size >= 16):
        raise XuetuError(f"chunk size must be an integer >= 16 tokens, got {chunk_size!r}")
    if not (isinstance(overlap, int) and 0 <= overlap < chunk_size):
        raise XuetuError(f"overlap must be an integer in [0, chunk size), got {overlap!r}")
    path = kb_root() / name
    if (path / "manifest.json").exists():
        raise Conflict(f"knowledge base {name!r} already exists", f"Add to it with: xuetu kb add {name} PATHS...",
                       code="kb_exists")
    emb = load_embedder(embedder or DEFAULT_EMBEDDER)  # fails early, before anything is written
    if reranker:
        from xuetu.rag.rerank import load_reranker

        load_reranker(reranker)
    chunk_size = min(chunk_size, emb.max_tokens - 2)  # a chunk the embedder would truncate is lost text
    settings = Settings(name=name, embedder=emb.ref.name, store=store, location=location, chunk_size=chunk_size,
                        overlap=min(overlap, chunk_size // 2), reranker=reranker, dimensions=emb.dimensions)
    path.mkdir(parents=True, exist_ok=True)
    kb = KnowledgeBase(path, {"settings": settings.__dict__, "documents": {}})
    kb.commit()
    return kb


def open_kb(name: str) -> KnowledgeBase:
    check_name(name)
    path = kb_root() / name
    if not (path / "manifest.json").is_file():
        known = list_names()
        raise NotFound(f"no knowledge base named {name!r}",
                       f"Known: {', '.join(known)}." if known else f"Create one with: xuetu kb create {name}",
                       code="kb_not_found", param="kb")
    return KnowledgeBase(path, orjson.loads((path / "manifest.json").read_bytes()))


def list_names() -> list[str]:
    root = kb_root()
    return sorted(p.name for p in root.iterdir() if (p / "manifest.json").is_file()) if root.is_dir() else []


def remove(name: str) -> None:
    kb = open_kb(name)
    if kb.settings.location:  # a Qdrant server keeps the vectors: drop the collection there too
        drop = getattr(kb.store, "drop", None)
        if drop:
            drop()
    kb.close()
    shutil.rmtree(kb.path)
