"""The one filter meaning that the stores and the BM25 index share."""

from __future__ import annotations

import pytest

from xuetu.errors import XuetuError
from xuetu.rag.filters import Where, parse_where, tag_key, tags_of


def test_parse_where_normalises():
    assert parse_where(None) == Where() and not parse_where({})
    assert parse_where({"source": "a.md"}) == Where(sources=("a.md",))  # one name, not a list of letters
    assert parse_where({"tags": ["x", "y", "x"], "source": None}) == Where(tags=("x", "y"))
    assert not parse_where({"source": [], "tags": []})


@pytest.mark.parametrize("bad", [{"sources": ["a"]}, {"tags": [1]}, {"source": {"a": 1}}, ["a.md"]])
def test_parse_where_rejects_malformed(bad):
    with pytest.raises(XuetuError):
        parse_where(bad)


def test_matches_and_tag_keys():
    meta = {"source": "a.md", tag_key("red"): True, tag_key("old"): False, "page": 2}
    assert tags_of(meta) == ["red"]
    assert Where(sources=("a.md",), tags=("red", "blue")).matches(meta)
    assert not Where(tags=("old",)).matches(meta)  # a False tag key is not a tag
    assert not Where(sources=("b.md",)).matches(meta)
    assert Where().matches(meta)
