"""Reciprocal rank fusion on fixed lists: the arithmetic, ties, and which copy of a hit survives."""

from __future__ import annotations

import pytest

from xuetu.rag.fusion import reciprocal_rank_fusion
from xuetu.rag.stores import Hit


def hits(*ids: str, text: str = "", score: float = 0.5) -> list[Hit]:
    return [Hit(id=i, score=score, text=f"{text}{i}", metadata={"from": text}) for i in ids]


def test_scores_are_sums_of_reciprocal_ranks():
    fused = reciprocal_rank_fusion([hits("a", "b", "c"), hits("b", "c", "d")])
    assert [h.id for h in fused] == ["b", "c", "a", "d"]
    assert [h.score for h in fused] == pytest.approx([1 / 62 + 1 / 61, 1 / 63 + 1 / 62, 1 / 61, 1 / 63])


def test_k_and_limit():
    fused = reciprocal_rank_fusion([hits("a", "b"), hits("b", "a", "c")], k=1, limit=2)
    assert [(h.id, h.score) for h in fused] == [("a", pytest.approx(1 / 2 + 1 / 3)), ("b", pytest.approx(1 / 3 + 1 / 2))]
    assert reciprocal_rank_fusion([hits("a", "b", "c")], limit=0) == []


def test_ties_keep_first_seen_order():
    assert [h.id for h in reciprocal_rank_fusion([hits("a"), hits("b")])] == ["a", "b"]
    assert [h.id for h in reciprocal_rank_fusion([hits("b"), hits("a")])] == ["b", "a"]
    assert [h.id for h in reciprocal_rank_fusion([hits("x", "y"), hits("y", "x")])] == ["x", "y"]


def test_first_list_supplies_text_and_metadata_and_inputs_are_untouched():
    dense, sparse = hits("a", "b", text="dense-"), hits("b", "c", text="bm25-")
    fused = {h.id: h for h in reciprocal_rank_fusion([dense, sparse])}
    assert (fused["b"].text, fused["b"].metadata) == ("dense-b", {"from": "dense-"})
    assert (fused["c"].text, fused["c"].metadata) == ("bm25-c", {"from": "bm25-"})
    assert all(h.score == 0.5 for h in dense + sparse)


def test_repeated_id_in_one_list_counts_once_at_its_best_rank():
    fused = reciprocal_rank_fusion([hits("a", "b", "a")])
    assert [(h.id, h.score) for h in fused] == [("a", pytest.approx(1 / 61)), ("b", pytest.approx(1 / 62))]


def test_empty_inputs():
    assert reciprocal_rank_fusion([]) == []
    assert [h.id for h in reciprocal_rank_fusion([[], hits("a")])] == ["a"]
