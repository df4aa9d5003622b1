"""Reciprocal rank fusion: one ranking from several (dense and BM25), using ranks, not scores.

Cosine similarities and BM25 scores live on different scales, so they cannot be added; ranks can.
Each list gives a chunk 1 / (k + rank), rank counted from 1, and the sums are sorted. k = 60 is
the constant from Cormack et al. (2009); a larger k flattens the gap between the top ranks.
"""

from __future__ import annotations

from dataclasses import replace

from xuetu.rag.stores import Hit


def reciprocal_rank_fusion(result_lists: list[list[Hit]], k: int = 60, limit: int | None = None) -> list[Hit]:
    """Fused hits, best first, with score = sum of 1 / (k + rank).

    A hit keeps the text and metadata of the first list that holds it. Equal scores keep the order in
    which the hits were first seen, so the result is deterministic. An id repeated within one list
    counts once, at its best rank.
    """
    fused: dict[str, Hit] = {}
    for hits in result_lists:
        seen: set[str] = set()
        for rank, hit in enumerate(hits, start=1):
            if hit.id in seen:
                continue
            seen.add(hit.id)
            gain = 1.0 / (k + rank)
            if hit.id in fused:
                fused[hit.id].score += gain
            else:
                fused[hit.id] = replace(hit, score=gain, metadata=dict(hit.metadata))
    ranked = sorted(fused.values(), key=lambda h: -h.score)  # sorted() is stable: ties stay in first-seen order
    return ranked if limit is None else ranked[:limit]
