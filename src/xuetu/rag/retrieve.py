"""Retrieval: dense (vector store), sparse (BM25) or hybrid (both, fused by reciprocal rank), then an
optional cross-encoder rerank. Results from documents the manifest does not name are dropped."""

from __future__ import annotations

from dataclasses import dataclass

from xuetu.errors import XuetuError
from xuetu.rag.kb import KnowledgeBase
from xuetu.rag.stores import Hit

MODES = ("hybrid", "dense", "bm25")
ENGLISH_ONLY_EMBEDDERS = {"all-minilm:l6-v2"}
"""Embedders trained on English alone: for a Chinese question their vectors carry next to no signal, and
fusing that noise with BM25 only pushes good keyword hits down. Hybrid search leaves them out then."""


def dense_reads(embedder: str, question: str) -> bool:
    from xuetu.data.language import detect_language

    return embedder not in ENGLISH_ONLY_EMBEDDERS or detect_language(question, zh_or_en=True) == "en"


@dataclass
class Result:
    rank: int
    id: str
    score: float
    text: str
    source: str
    page: int | None
    heading: str | None
    start: int
    end: int
    metadata: dict

    def where(self) -> str:
        if self.page is not None:
            return f"{self.source} p. {self.page}"
        return f"{self.source} § {self.heading}" if self.heading else self.source

    def to_dict(self, snippet: int | None = None) -> dict:
        text = self.text if snippet is None or len(self.text) <= snippet else self.text[:snippet].rstrip() + "…"
        return {"rank": self.rank, "id": self.id, "score": round(self.score, 6), "source": self.source,
                "page": self.page, "heading": self.heading, "start": self.start, "end": self.end, "text": text}


def build_filter(sources: list[str] | None = None, tags: list[str] | None = None) -> dict | None:
    where = {}
    if sources:
        where["source"] = list(sources)
    if tags:
        where["tags"] = list(tags)
    return where or None


def search(kb: KnowledgeBase, question: str, k: int = 5, mode: str = "hybrid", where: dict | None = None,
           rerank: bool = True) -> list[Result]:
    if not isinstance(question, str) or not question.strip():
        raise XuetuError("the question is empty")
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= 100:
        raise XuetuError(f"k must be an integer from 1 to 100, got {k!r}")
    if mode not in MODES:
        raise XuetuError(f"unknown retrieval mode {mode!r}", f"Choose one of: {', '.join(MODES)}.")
    if not kb.documents:
        return []
    pool = max(4 * k, 20)  # each retriever brings more than k, so fusion and reranking have a choice
    lists: list[list[Hit]] = []
    if mode == "hybrid" and not dense_reads(kb.settings.embedder, question):
        mode = "bm25"
    if mode in ("dense", "hybrid"):
        vector, _ = kb.embedder.embed([question])
        lists.append([h for h in kb.store.query(vector[0], pool, where) if kb.is_live(h.metadata)])
    if mode in ("bm25", "hybrid"):
        lists.append([h for h in kb.bm25.query(question, pool, where) if kb.is_live(h.metadata)])
    if len(lists) == 2:
        from xuetu.rag.fusion import reciprocal_rank_fusion

        hits = reciprocal_rank_fusion(lists, limit=pool)
    else:
        hits = lists[0]
    if rerank and kb.settings.reranker and hits:
        from xuetu.rag.rerank import load_reranker

        hits = load_reranker(kb.settings.reranker).rerank(question, hits, k)
    return [_result(i + 1, h) for i, h in enumerate(hits[:k])]


def _result(rank: int, h: Hit) -> Result:
    m = h.metadata
    return Result(rank=rank, id=h.id, score=float(h.score), text=h.text, source=m.get("source", "?"),
                  page=m.get("page"), heading=m.get("heading"), start=int(m.get("start", 0)),
                  end=int(m.get("end", 0)), metadata=m)
