"""One conformance suite for every `VectorStore`: the FAISS store and PostgreSQL + pgvector on a real server.

Each test runs once per store (the `store` fixture). Searches are checked against an independent scipy brute
force, and the two stores against each other: the same data gives the same exact top k.
"""

import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from indexes.durable import DurableIndex
from indexes.errors import (
    DimensionMismatchError,
    IndexClosedError,
    InvalidInputError,
    ItemNotFoundError,
    MixedTypeFilterError,
)
from indexes.metrics import SEARCH_METRICS
from indexes.store import VectorStore
from tests.helpers import assert_matches_brute_force, brute_force

DIM = 8
TEMPERATURES = (1.0, 0.5)
STORES = ("faiss", "pgvector")


def open_store(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> VectorStore:
    """An empty store of `kind` with dimension DIM (pgvector: on the session's server, with TEMPERATURES)."""
    if kind == "faiss":
        faiss_store = DurableIndex.open(tmp_path / "faiss", name="t", model_name="m", model_sha256="ab" * 32, dim=DIM)
        request.addfinalizer(faiss_store.close)
        return faiss_store
    from indexes.pg import PgIndexSpec, PgVectorStore

    database = request.getfixturevalue("pg_database")
    spec = PgIndexSpec(f"t-{uuid.uuid4().hex[:12]}", "m", "ab" * 32, DIM, TEMPERATURES)
    pg_store = PgVectorStore.create(database, spec)
    request.addfinalizer(pg_store.drop)
    return pg_store


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    yield open_store(request.param, request, tmp_path)


def _data(rng: np.random.Generator, n: int = 300) -> tuple[list[str], np.ndarray, list[dict[str, object]]]:
    vectors = (rng.standard_normal((n, DIM)) * 3).astype(np.float32)
    ids = [f"item-{i:04d}" for i in range(n)]
    metadata: list[dict[str, object]] = [{"label": i % 5, "even": i % 2 == 0, "name": f"n{i}"} for i in range(n)]
    return ids, vectors, metadata


def test_store_upsert_get_count_list_delete(store: VectorStore, rng: np.random.Generator) -> None:
    ids, vectors, metadata = _data(rng, 20)
    assert store.upsert(ids, vectors, metadata) == 20
    replacement = rng.standard_normal((2, DIM)).astype(np.float32)
    store.upsert(["item-0003", "zz-new"], replacement, [{"v": [1, {"deep": None}]}, {"é": "ü"}])
    store.delete("item-0000")
    assert store.count() == 20
    item = store.get("item-0003")
    np.testing.assert_array_equal(item.logits, replacement[0])
    assert item.metadata == {"v": [1, {"deep": None}]}
    np.testing.assert_array_equal(store.get("item-0007").logits, vectors[7])
    with pytest.raises(ItemNotFoundError):
        store.get("item-0000")
    with pytest.raises(ItemNotFoundError):
        store.delete("item-0000")
    listed = [i.id for i in store.list(0, 7)] + [i.id for i in store.list(7, 100)]
    assert listed == [*ids[1:], "zz-new"]


def test_store_lists_in_insertion_order(store: VectorStore, rng: np.random.Generator) -> None:
    ids = ["b", "B", "a", "é", "z", "Z9", "ä", "日本", "a b", "a-b", "A"]
    store.upsert(ids, rng.standard_normal((len(ids), DIM)), [{}] * len(ids))
    store.upsert(["new", "a"], rng.standard_normal((2, DIM)), [{}, {"again": True}])  # "a" keeps its place
    store.delete("z")
    expected = [i for i in ids if i != "z"] + ["new"]
    assert [item.id for item in store.list(0, 100)] == expected
    assert [item.id for item in store.list(3, 4)] == expected[3:7]


def test_store_refuses_filters_that_mix_json_types(store: VectorStore, rng: np.random.Generator) -> None:
    store.upsert(["n", "s", "t"], rng.standard_normal((3, DIM)), [{"x": 7}, {"x": "7.0"}, {"x": "seven"}])
    query = rng.standard_normal(DIM)
    for value in (7, 7.0, "7", "7.0"):
        with pytest.raises(MixedTypeFilterError, match="1 item"):
            store.search(query, 3, filter={"x": value})
    assert [n.id for n in store.search(query, 3, filter={"x": "seven"}).neighbors[0]] == ["t"]
    assert store.search(query, 3, filter={"x": 8}).neighbors == [[]]


def test_store_rejects_bad_requests_whole(store: VectorStore, rng: np.random.Generator) -> None:
    store.upsert(["keep"], rng.standard_normal((1, DIM)), [{"a": 1}])
    with pytest.raises(DimensionMismatchError):
        store.upsert(["x", "y"], rng.standard_normal((2, DIM + 1)), [{}, {}])
    with pytest.raises(InvalidInputError):
        store.upsert(["x", "x"], rng.standard_normal((2, DIM)), [{}, {}])
    with pytest.raises(InvalidInputError):
        store.upsert(["x", "y"], rng.standard_normal((2, DIM)), [{}, {"nan": float("nan")}])
    assert [item.id for item in store.list(0, 10)] == ["keep"]


@pytest.mark.parametrize("metric", SEARCH_METRICS)
def test_store_search_matches_brute_force(store: VectorStore, metric: str, rng: np.random.Generator) -> None:
    ids, vectors, metadata = _data(rng)
    store.upsert(ids, vectors, metadata)
    queries = rng.standard_normal((4, DIM)) * 3
    for k, condition in ((10, None), (7, {"label": 2}), (3, {"label": 1, "even": False})):
        rows = [i for i, m in enumerate(metadata) if condition is None or all(m[f] == v for f, v in condition.items())]
        result = store.search(queries, k, metric=metric, temperature=0.5, filter=condition)
        truth = brute_force(metric, queries, vectors[rows], 0.5)
        assert_matches_brute_force(result, truth, [ids[r] for r in rows], k, tol=1e-9)


def test_store_filter_returns_k_when_k_match(store: VectorStore, rng: np.random.Generator) -> None:
    ids, vectors, metadata = _data(rng, 400)
    metadata = [{"rare": i % 97 == 0, "label": i % 5} for i in range(400)]  # 5 rare items, far from the queries
    vectors[[i for i in range(400) if i % 97 == 0]] += 50.0
    store.upsert(ids, vectors, metadata)
    for metric in ("l2", "ce"):
        result = store.search(rng.standard_normal((3, DIM)), 5, metric=metric, filter={"rare": True})
        assert [sorted(n.id for n in row) for row in result.neighbors] == [[ids[i] for i in (0, 97, 194, 291, 388)]] * 3


def test_store_filter_is_json_equality(store: VectorStore, rng: np.random.Generator) -> None:
    values: list[object] = [3, 3.0, "three", True, 1, None, [3], {"v": 3}]
    ids = [f"v{i}" for i in range(len(values))] + ["missing"]
    metadata = [{"x": value} for value in values] + [{}]
    store.upsert(ids, rng.standard_normal((len(ids), DIM)), metadata)
    query = rng.standard_normal(DIM)

    def found(value: object) -> set[str]:
        return {n.id for n in store.search(query, 20, filter={"x": value}).neighbors[0]}

    assert found(3) == found(3.0) == {"v0", "v1"}
    assert found("three") == {"v2"}
    assert found(True) == {"v3"}
    assert found(1) == {"v4"}
    assert found(None) == {"v5"}
    hostile = {"x'); DROP TABLE t; --": 1, 'a"b': None}
    assert store.search(query, 5, filter=hostile).neighbors == [[]]
    assert store.count() == len(ids)


def test_store_predicted_filter(store: VectorStore, rng: np.random.Generator) -> None:
    ids, vectors, metadata = _data(rng, 200)
    store.upsert(ids, vectors, metadata)
    result = store.search(rng.standard_normal((2, DIM)), 50, filter={"predicted": 3, "label": 1})
    expected = {ids[i] for i in range(200) if vectors[i].argmax() == 3 and i % 5 == 1}
    assert all({n.id for n in row} == expected for row in result.neighbors)


def test_store_own_vector_at_distance_zero(store: VectorStore, rng: np.random.Generator) -> None:
    ids, vectors, metadata = _data(rng, 100)
    store.upsert(ids, vectors, metadata)
    for metric in ("l2", "kl", "js", "tri", "l2_centered"):
        hits = store.search(vectors[:5], 1, metric=metric).neighbors
        assert [row[0].id for row in hits] == ids[:5]
        assert all(row[0].distance == 0.0 for row in hits), metric


def test_store_closed_refuses(store: VectorStore, rng: np.random.Generator) -> None:
    store.upsert(["a"], rng.standard_normal((1, DIM)), [{}])
    store.close()
    store.close()
    with pytest.raises(IndexClosedError):
        store.count()


def test_stores_return_identical_answers(
    request: pytest.FixtureRequest, tmp_path: Path, rng: np.random.Generator
) -> None:
    ids, vectors, metadata = _data(rng, 500)
    stores = [open_store(kind, request, tmp_path) for kind in STORES]
    for each in stores:
        each.upsert(ids, vectors, metadata)
    queries = np.vstack([rng.standard_normal((3, DIM)) * 3, vectors[:2]])
    for metric in SEARCH_METRICS:
        for temperature in TEMPERATURES:
            for condition in (None, {"label": 3}):
                faiss, pgvector = (
                    s.search(queries, 9, metric=metric, temperature=temperature, filter=condition) for s in stores
                )
                for a, b in zip(faiss.neighbors, pgvector.neighbors, strict=True):
                    assert [n.id for n in a] == [n.id for n in b], (metric, temperature, condition)
                    np.testing.assert_allclose([n.distance for n in a], [n.distance for n in b], rtol=1e-13, atol=1e-15)
                    assert [n.metadata for n in a] == [n.metadata for n in b]


def test_store_keeps_thumbnails_with_their_items(store: VectorStore, rng: np.random.Generator) -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    store.upsert(["a", "b"], rng.standard_normal((2, DIM)), [{}, {}], thumbnails=[png, None])
    assert store.thumbnail("a") == png and store.thumbnail("b") is None
    store.upsert(["a"], rng.standard_normal((1, DIM)), [{}])  # replaced without one: it has none
    assert store.thumbnail("a") is None
    store.upsert(["b"], rng.standard_normal((1, DIM)), [{}], thumbnails=[png[:100]])
    assert store.thumbnail("b") == png[:100]
    with pytest.raises(InvalidInputError, match="thumbnail"):
        store.upsert(["c", "d"], rng.standard_normal((2, DIM)), [{}, {}], thumbnails=[png])
    store.delete("b")
    with pytest.raises(ItemNotFoundError):
        store.thumbnail("b")
    assert store.count() == 1
