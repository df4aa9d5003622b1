"""Optional second-stage ranking with a cross-encoder, which reads query and chunk together.

A cross-encoder (e.g. BAAI/bge-reranker-base) scores relevance better than the embedding's cosine,
but it runs the model once per (query, chunk) pair, so it only reorders the few dozen candidates
that retrieval already found. The model must be on disk or in the Hugging Face cache: xuetu does
not download it here.
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

from xuetu.errors import XuetuError
from xuetu.rag.stores import Hit


class Reranker:
    def __init__(self, model_path_or_name: str):
        from sentence_transformers import CrossEncoder

        self.name = model_path_or_name
        try:
            self.model = CrossEncoder(model_path_or_name)
        except Exception as e:  # noqa: BLE001 - missing files, no network, a folder that is not a model
            raise XuetuError(
                f"cannot load the reranker model {model_path_or_name!r}: {type(e).__name__}: {str(e).splitlines()[0]}",
                "Give the folder of a sentence-transformers cross-encoder, or download one into the "
                "Hugging Face cache while online; or create the knowledge base without a reranker.",
            ) from None

    def rerank(self, query: str, hits: list[Hit], top_k: int) -> list[Hit]:
        """The top_k hits by cross-encoder score (higher is better), which replaces their score."""
        if not hits or top_k < 1:
            return []
        scores = self.model.predict([(query, h.text) for h in hits], show_progress_bar=False)
        rescored = [replace(h, score=float(s)) for h, s in zip(hits, scores)]
        return sorted(rescored, key=lambda h: -h.score)[:top_k]


@lru_cache(maxsize=2)
def load_reranker(model_path_or_name: str) -> Reranker:
    """A Reranker, loaded once per process: loading a cross-encoder takes seconds, a query should not."""
    return Reranker(model_path_or_name)
