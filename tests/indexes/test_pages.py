"""Browsing, counting and deleting by filter, on both stores, against plain-Python references (tests/filter_oracle.py)."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from indexes.durable import DurableIndex
from indexes.errors import InvalidInputError
from indexes.faiss_index import FaissIndex
from indexes.pages import Cursor, Order, decode_cursor, encode_cursor, listing_key, parse_order
from indexes.store import VectorStore
from tests import filter_oracle
from tests.helpers import store_of_kind

DIM = 5


def _items(seed: int, n: int, start: int = 0) -> tuple[list[str], np.ndarray, list[dict[str, Any]]]:
    """Seeded items; every seventh repeats the logits of the one before (ties in every derived order)."""
    rng = np.random.default_rng(seed)
    vectors = (rng.standard_normal((n, DIM)) * 2).astype(np.float32)
    for i in range(1, n, 7):
        vectors[i] = vectors[i - 1]
    labels = rng.integers(0, 4, n)
    metadata = [
        {"label": int(labels[i]), "half": "first" if i < n // 2 else "second", **({"odd": True} if i % 2 else {})}
        for i in range(n)
    ]
    return [f"item-{start + i:04d}" for i in range(n)], vectors, metadata


@pytest.fixture(params=("faiss", "pgvector"))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    yield store_of_kind(request, request.param, tmp_path / "faiss", DIM)


def _scan(store: VectorStore, filter: dict[str, Any] | None, order: Order, limit: int, t: float) -> list[str]:
    listed, after = [], None
    while True:
        page = store.page(filter, order, after, limit, t)
        listed += [item.id for item in page.items]
        if page.next is None:
            return listed
        after = page.next


def _value(logits: np.ndarray, field: str, t: float) -> float:
    return float(filter_oracle.derived(logits.tolist(), field, t))


@pytest.mark.parametrize(
    ("order", "filter", "t"),
    [
        ("insertion", None, 1.0),
        ("insertion:desc", {"label": {"$in": [1, 3]}}, 1.0),
        ("confidence", None, 0.5),
        ("confidence:desc", {"odd": True}, 2.0),
        ("margin:asc", {"$not": {"label": 0}}, 1.0),
        ("entropy:desc", {"confidence": {"$lt": 0.9}}, 4.0),
    ],
)
def test_pages_list_every_match_once_in_the_oracle_order(
    store: VectorStore, order: str, filter: dict[str, Any] | None, t: float
) -> None:
    ids, vectors, metadata = _items(0, 61)
    store.upsert(ids, vectors, metadata)
    parsed = parse_order(order)
    listed = _scan(store, filter, parsed, 7, t)
    expected = [i for i in range(len(ids)) if filter_oracle.matches(filter or {}, vectors[i].tolist(), metadata[i], t)]
    assert sorted(listed) == sorted(ids[i] for i in expected) and len(set(listed)) == len(listed)
    rows = [ids.index(item_id) for item_id in listed]
    sign = -1 if parsed.descending else 1
    if not parsed.derived:
        assert rows == sorted(rows, key=lambda r: sign * r)
        return
    values = [sign * _value(vectors[r], parsed.field, t) for r in rows]
    assert all(b >= a - 1e-12 for a, b in zip(values, values[1:], strict=False))
    for a, b in zip(rows, rows[1:], strict=False):  # equal logits: insertion order breaks the tie
        if np.array_equal(vectors[a], vectors[b]):
            assert sign * a < sign * b
    assert store.page(filter, parsed, None, 7, t).matched == len(expected)


@pytest.mark.parametrize("order", ["insertion", "confidence:desc"])
def test_a_cursor_skips_and_repeats_nothing_that_stayed_while_others_change(store: VectorStore, order: str) -> None:
    ids, vectors, metadata = _items(1, 50)
    store.upsert(ids, vectors, metadata)
    rng = np.random.default_rng(5)
    parsed, after, listed = parse_order(order), None, []
    touched: set[str] = set()
    batch = 0
    while True:
        page = store.page(None, parsed, after, 6, 1.0)
        listed += [item.id for item in page.items]
        if page.next is None:
            break
        after = page.next
        # Between pages: new items, deletes of listed and unlisted items, replacements with new logits.
        new_ids, new_vectors, new_metadata = _items(100 + batch, 3, start=1000 + 3 * batch)
        store.upsert(new_ids, new_vectors, new_metadata)
        victims = [str(v) for v in rng.choice([i for i in ids if i not in touched], 2, replace=False)]
        store.delete(victims[0])
        store.upsert([victims[1]], rng.standard_normal((1, DIM)).astype(np.float32), [{"label": 9}])
        touched |= {*victims, *new_ids}
        batch += 1
    stayed = [i for i in ids if i not in touched]
    assert all(listed.count(item_id) == 1 for item_id in stayed)
    if not parsed.derived:  # a replaced item keeps its place in insertion order: nothing at all is repeated
        assert len(listed) == len(set(listed))


def test_a_cursor_survives_a_restart_with_deletes_in_the_log_and_in_a_snapshot(tmp_path: Path) -> None:
    def reopen() -> DurableIndex:
        return DurableIndex.open(tmp_path / "i", name="t", model_name="m", model_sha256="ab" * 32, dim=DIM)

    index = reopen()
    ids, vectors, metadata = _items(2, 40)
    index.upsert(ids, vectors, metadata)
    index.delete(ids[3])
    first = index.page(None, Order(), None, 10, 1.0)
    assert first.next is not None
    index.delete(ids[20])
    index.close(compact=False)  # the deletes only in the log: replayed at start
    index = reopen()
    second = index.page(None, Order(), first.next, 10, 1.0)
    index.close()  # a snapshot now holds every item's seq
    index = reopen()
    assert second.next is not None
    rest = index.page(None, Order(), second.next, 100, 1.0)
    index.upsert(["late"], vectors[:1], [{}])
    assert index.page(None, Order(), second.next, 100, 1.0).items[-1].id == "late"  # new ids come last
    listed = [item.id for page in (first, second, rest) for item in page.items]
    assert listed == [i for i in ids if i not in (ids[3], ids[20])]
    index.close()


@pytest.mark.parametrize("group_by", ["label", "odd", "mixed", "predicted"])
def test_facets_count_per_value_as_the_filters_compare_values(store: VectorStore, group_by: str) -> None:
    ids, vectors, metadata = _items(3, 45)
    values = [2, 2.0, True, 1, "1", None, [1, 2], {"x": 1}, 2.5]
    for i, m in enumerate(metadata):
        if i % 5:
            m["mixed"] = values[i % len(values)]
    store.upsert(ids, vectors, metadata)
    filter = {"half": "first"}
    rows = [i for i in range(len(ids)) if metadata[i]["half"] == "first"]
    facets = store.facets(filter, group_by, 1.0, 100)
    assert facets.matched == len(rows) and facets.groups is not None and not facets.more
    reference: dict[str, int] = {}
    for r in rows:
        if group_by == "predicted":
            key = str(filter_oracle.derived(vectors[r].tolist(), "predicted", 1.0))
        elif group_by in metadata[r]:
            value = metadata[r][group_by]
            number = isinstance(value, int | float) and not isinstance(value, bool)
            key = f"number:{float(value)}" if number else f"{type(value).__name__}:{value!r}"
        else:
            continue
        reference[key] = reference.get(key, 0) + 1
    got: dict[str, int] = {}
    for value, count in facets.groups:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        key = (
            str(value)
            if group_by == "predicted"
            else f"number:{float(value)}"
            if number
            else f"{type(value).__name__}:{value!r}"
        )
        got[key] = count
    assert got == reference
    assert facets.missing == (0 if group_by == "predicted" else len(rows) - sum(reference.values()))
    counts = [count for _, count in facets.groups]
    assert counts == sorted(counts, reverse=True)
    assert store.facets(filter, group_by, 1.0, 1).more == (len(reference) > 1)


@pytest.mark.parametrize(
    "filter", [{"label": {"$in": [0, 2]}}, {"odd": True, "confidence": {"$gt": 0.6}}, {"label": 99}, {}]
)
def test_delete_where_removes_exactly_the_matches(store: VectorStore, filter: dict[str, Any]) -> None:
    ids, vectors, metadata = _items(4, 33)
    store.upsert(ids, vectors, metadata)
    doomed = {ids[i] for i in range(len(ids)) if filter_oracle.matches(filter, vectors[i].tolist(), metadata[i], 2.0)}
    assert store.delete_where(filter, 2.0) == len(doomed)
    remaining = {item.id for item in store.page(None, Order(), None, 1000, 1.0).items}
    assert remaining == set(ids) - doomed and store.count() == len(ids) - len(doomed)


def test_a_cursor_names_its_listing_and_refuses_others() -> None:
    key = listing_key(Order("confidence", True), {"label": 1}, 2.0)
    token = encode_cursor(Cursor(17, 0.25), key)
    assert decode_cursor(token, key) == Cursor(17, 0.25)
    for other in (
        listing_key(Order("confidence", False), {"label": 1}, 2.0),
        listing_key(Order("confidence", True), {"label": 2}, 2.0),
        listing_key(Order("confidence", True), {"label": 1}, 1.0),
    ):
        with pytest.raises(InvalidInputError, match="belongs to another listing"):
            decode_cursor(token, other)
    for bad in ("", "abc", token[:-3], "eyJrIjoxfQ"):
        with pytest.raises(InvalidInputError, match="not a cursor this service gave"):
            decode_cursor(bad, key)
    for order in ("size", "confidence:up", "predicted"):
        with pytest.raises(InvalidInputError, match="order is insertion"):
            parse_order(order)


@pytest.mark.parametrize("t", [1e-300, 1e-30, 1e30])
def test_derived_orders_stay_finite_and_agree_at_extreme_temperatures(store: VectorStore, t: float) -> None:
    ids, vectors, metadata = _items(6, 20)
    store.upsert(ids, vectors, metadata)
    for field in ("confidence", "margin", "entropy"):
        page = store.page({field: {"$gte": 0}}, Order(field), None, 100, t)
        assert page.matched == 20 and len(page.items) == 20
    low = store.page(None, Order("entropy", True), None, 100, 1e-300)
    assert low.matched == 20  # one-hot at a tiny T: every entropy is 0 (ties by insertion)


def test_a_derived_order_follows_every_write_between_pages() -> None:
    """The FAISS store keeps each derived order's values between pages; a write makes them stale at once."""
    index = FaissIndex(DIM)
    ids, vectors, metadata = _items(3, 40)
    index.upsert(ids, vectors, metadata)
    order = parse_order("confidence:desc")
    first = index.page(None, order, None, 5, 1.0).items
    least = index.page(None, parse_order("confidence:asc"), None, 1, 1.0).items[0].id
    confident = np.zeros((1, DIM), np.float32)
    confident[0, 0] = 100.0
    index.upsert([least], confident, [{}])  # the least confident item becomes the most confident
    assert index.page(None, order, None, 5, 1.0).items[0].id == least
    index.delete(least)
    assert [item.id for item in index.page(None, order, None, 5, 1.0).items] == [item.id for item in first]
    index.upsert([least], confident, [{}])
    assert index.page(None, order, None, 1, 1.0).items[0].id == least
