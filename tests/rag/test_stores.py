"""Both vector stores, through open_store, on the same table of behaviours (each in its own tmp folder)."""

from __future__ import annotations

import numpy as np
import pytest

from xuetu.errors import XuetuError
from xuetu.rag.stores import Hit, names, open_store

DIM = 8


def unit(*xs: float) -> list[float]:
    v = np.zeros(DIM)
    v[: len(xs)] = xs
    return (v / np.linalg.norm(v)).tolist()


@pytest.fixture(params=["chroma", "qdrant"])
def kind(request) -> str:
    return request.param


@pytest.fixture
def opened(kind, tmp_path):
    """open() for this store kind at one folder; every store it opened is closed after the test."""
    stores = []

    def _open(dimensions: int = DIM):
        store = open_store(kind, str(tmp_path / kind), "kb-test", dimensions)
        stores.append(store)
        return store

    yield _open
    for s in stores:
        s.close()


def add_four(store) -> None:
    store.add(
        ids=["a", "b", "c", "d"],
        vectors=[unit(1), unit(0.8, 0.6), unit(0, 1), unit(0, 0, 1)],
        texts=["alpha", "beta", "gamma", "delta"],
        metadatas=[
            {"source": "one.md", "page": 1, "tag:red": True},
            {"source": "two.md", "heading": "Intro", "tag:blue": True},
            {"source": "one.md", "tag:red": True, "tag:blue": True},
            {"source": "three.md", "page": None},
        ],
    )


def test_query_orders_by_cosine_and_returns_text_and_metadata(opened):
    store = opened()
    add_four(store)
    hits = store.query(unit(1), k=2)
    assert [h.id for h in hits] == ["a", "b"]
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert hits[1].score == pytest.approx(0.8, abs=1e-5)
    assert hits[0] == Hit(id="a", score=hits[0].score, text="alpha",
                          metadata={"source": "one.md", "page": 1, "tag:red": True})
    assert store.query(unit(0, 1), k=1)[0].id == "c"
    assert len(store.query(unit(1), k=10)) == 4  # k above the count gives everything, not an error
    assert store.query(unit(0, 0, 1), k=1)[0].metadata == {"source": "three.md"}  # None values are dropped


def test_count_delete_and_replace(opened):
    store = opened()
    assert store.count() == 0
    assert store.query(unit(1), k=3) == []
    add_four(store)
    assert store.count() == 4
    store.delete(["a", "c", "no-such-id"])
    assert store.count() == 2
    assert [h.id for h in store.query(unit(1), k=4)] == ["b", "d"]
    store.add(["b"], [unit(0, 0, 0, 1)], ["beta again"], [{"source": "two.md"}])  # same id: replaced
    assert store.count() == 2
    top = store.query(unit(0, 0, 0, 1), k=1)[0]
    assert (top.text, top.score) == ("beta again", pytest.approx(1.0, abs=1e-5))


def test_persists_after_close_and_reopen(opened):
    store = opened()
    add_four(store)
    store.close()
    again = opened()
    assert again.count() == 4
    assert [h.id for h in again.query(unit(1), k=2)] == ["a", "b"]


@pytest.mark.parametrize("where, expected", [
    ({"source": ["one.md"]}, ["a", "c"]),
    ({"source": ["two.md", "three.md"]}, ["b", "d"]),
    ({"tags": ["red"]}, ["a", "c"]),
    ({"tags": ["blue"]}, ["b", "c"]),
    ({"tags": ["red", "blue"]}, ["a", "b", "c"]),
    ({"source": ["one.md"], "tags": ["blue"]}, ["c"]),
    ({"source": ["two.md"], "tags": ["red"]}, []),
    ({"source": ["missing.md"]}, []),
    ({"tags": ["green"]}, []),
    ({"source": [], "tags": []}, ["a", "b", "c", "d"]),
    (None, ["a", "b", "c", "d"]),
])
def test_filters_by_source_and_tags(opened, where, expected):
    store = opened()
    add_four(store)
    assert sorted(h.id for h in store.query(unit(1, 1, 1), k=10, where=where)) == expected


def test_bad_filter_is_a_user_error(opened):
    store = opened()
    add_four(store)
    with pytest.raises(XuetuError, match="unknown filter key"):
        store.query(unit(1), k=2, where={"page": [1]})


def test_add_more_than_one_batch(opened, kind, monkeypatch):
    if kind == "chroma":
        n = 6000  # above Chroma's own maximum batch (about 5,461 rows), which it refuses rather than splits
    else:
        # Qdrant's batch is ours (1,000); shrink it, since local mode commits each point to SQLite (~1 ms).
        monkeypatch.setattr("xuetu.rag.stores.qdrant._BATCH", 100)
        n = 250
    store = opened()
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [f"doc:{i}" for i in range(n)]
    store.add(ids, vectors, [f"text {i}" for i in range(n)], [{"source": f"s{i % 7}"} for i in range(n)])
    assert store.count() == n
    for i in (0, n // 2, n - 1):
        top = store.query(vectors[i], k=1)[0]
        assert (top.id, top.text) == (ids[i], f"text {i}")
    # Filtered queries: a broad one (many matches among the nearest) and one asking for every match.
    top = store.query(vectors[3], k=5, where={"source": ["s3"]})
    assert top[0].id == ids[3] and len(top) == 5 and {h.metadata["source"] for h in top} == {"s3"}
    every = store.query(vectors[3], k=n, where={"source": ["s3"]})
    assert sorted(h.id for h in every) == sorted(ids[i] for i in range(3, n, 7))
    store.delete(ids[: n - 10])  # also more than one delete batch
    assert store.count() == 10


def test_dimensions_are_checked(opened):
    store = opened()
    with pytest.raises(XuetuError, match="dimensions"):
        store.add(["x"], [[1.0, 0.0]], ["x"], [{}])
    with pytest.raises(XuetuError, match="equally many"):
        store.add(["x", "y"], [unit(1)], ["x"], [{}])
    add_four(store)
    store.close()
    with pytest.raises(XuetuError, match="8-dimensional"):
        opened(dimensions=16)


def test_drop_deletes_the_collection(opened):
    store = opened()
    add_four(store)
    store.drop()
    assert opened().count() == 0


def test_qdrant_local_lock_is_released_by_close(tmp_path):
    first = open_store("qdrant", str(tmp_path / "q"), "kb-test", DIM)
    with pytest.raises(XuetuError, match="other xuetu process"):
        open_store("qdrant", str(tmp_path / "q"), "kb-test", DIM)
    first.close()
    second = open_store("qdrant", str(tmp_path / "q"), "kb-test", DIM)
    assert second.count() == 0
    second.close()


def test_unknown_store_names_the_choices(tmp_path):
    assert names() == ["chroma", "qdrant"]
    with pytest.raises(XuetuError) as e:
        open_store("faiss", str(tmp_path), "kb-test", DIM)
    assert "faiss" in e.value.message and "chroma, qdrant" in e.value.hint
