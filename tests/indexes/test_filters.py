"""Filters: the grammar and its limits, and both stores against one plain-Python oracle (tests/filter_oracle.py)
on seeded random metadata and random filters."""

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from indexes.errors import InvalidInputError, MixedTypeFilterError
from indexes.faiss_index import FaissIndex
from indexes.filters import MAX_CONDITIONS, MAX_DEPTH, parse_filter, to_json, with_class_indexes
from indexes.masks import match_filter
from indexes.store import VectorStore
from tests import filter_oracle
from tests.helpers import store_of_kind

DIM, NUM_ITEMS = 4, 60
FIELDS = ("a", "b", "c", "d", "absent")
SCALARS: tuple[Any, ...] = (0, 1, 2, 2.0, 2.5, 3, -1, "x", "y", "3", "", True, False, None)
NUMBERS: tuple[float, ...] = (0, 1, 2, 2.5, 3, -1, 0.5)
DERIVED_NUMBERS = {"confidence": (0.3, 0.5, 0.7, 0.9), "margin": (0.1, 0.3, 0.6), "entropy": (0.2, 0.6, 1.0, 1.3)}


def _items(seed: int = 0) -> tuple[list[str], np.ndarray, list[dict[str, Any]]]:
    """Seeded items whose metadata holds numbers, strings, booleans, null, nested values and missing keys; `"3"`
    (a number spelled as a string) only in `d`, so that equalities on `d` with 3 are refused as mixed types, and
    `"1e999"` (a number past float64's range spelled as a string: equal to no number) in `d` too."""
    rng = np.random.default_rng(seed)
    vectors = (rng.standard_normal((NUM_ITEMS, DIM)) * 2).astype(np.float32)
    metadata: list[dict[str, Any]] = []
    for i in range(NUM_ITEMS):
        item: dict[str, Any] = {}
        if rng.random() < 0.9:
            item["a"] = [0, 1, 2, 2.0, 2.5, 3, -1][int(rng.integers(7))]
        if rng.random() < 0.8:
            item["b"] = ["x", "y", "z", ""][int(rng.integers(4))]
        if rng.random() < 0.7:
            item["c"] = [True, False, None, 1, [1, 2], {"x": 1}][int(rng.integers(6))]
        if i % 9 == 0:
            item["d"] = "3"
        elif i % 9 == 4:
            item["d"] = "1e999"
        elif rng.random() < 0.5:
            item["d"] = [3, "x", 2.5][int(rng.integers(3))]
        metadata.append(item)
    return [f"i{i:03d}" for i in range(NUM_ITEMS)], vectors, metadata


def _conditions(derived: bool) -> st.SearchStrategy[dict[str, Any]]:
    scalar = st.sampled_from(SCALARS)
    number = st.sampled_from(NUMBERS)
    on_metadata = st.one_of(
        st.tuples(st.sampled_from(("$eq", "$ne")), scalar),
        st.tuples(st.sampled_from(("$in", "$nin")), st.lists(scalar, max_size=3)),
        st.tuples(st.sampled_from(("$gt", "$gte", "$lt", "$lte")), number),
        st.tuples(st.just("$exists"), st.booleans()),
    )
    metadata_condition = st.one_of(
        st.builds(lambda f, v: {f: v}, st.sampled_from(FIELDS), scalar),
        st.builds(lambda f, ov: {f: {ov[0]: ov[1]}}, st.sampled_from(FIELDS), on_metadata),
    )
    predicted = st.one_of(
        st.builds(lambda c: {"predicted": c}, st.integers(0, DIM - 1)),
        st.builds(lambda op, c: {"predicted": {op: c}}, st.sampled_from(("$ne", "$gt", "$lte")), st.integers(0, 3)),
        st.builds(lambda cs: {"predicted": {"$in": cs}}, st.lists(st.integers(0, DIM - 1), max_size=3)),
    )
    options = [metadata_condition, predicted]
    if derived:
        options += [
            st.builds(
                lambda op, v, f=f: {f: {op: v}}, st.sampled_from(("$gt", "$gte", "$lt", "$lte")), st.sampled_from(vs)
            )
            for f, vs in DERIVED_NUMBERS.items()
        ]
    return st.one_of(*options)


def _filters(derived: bool) -> st.SearchStrategy[dict[str, Any]]:
    return st.recursive(
        _conditions(derived),
        lambda inner: st.one_of(
            st.builds(lambda fs: {"$and": fs}, st.lists(inner, min_size=1, max_size=3)),
            st.builds(lambda fs: {"$or": fs}, st.lists(inner, min_size=1, max_size=3)),
            st.builds(lambda f: {"$not": f}, inner),
            st.builds(lambda a, b: {**a, **b}, inner, inner),  # the keys of one object: all must hold
        ),
        max_leaves=6,
    )


def _expected(filter: dict[str, Any], vectors: np.ndarray, metadata: list[dict[str, Any]], t: float) -> set[int] | None:
    """Rows the oracle keeps; None when the stores must refuse the filter as mixing JSON types."""
    if filter_oracle.skips_other_type(filter, metadata):
        return None
    return {
        i
        for i, (v, m) in enumerate(zip(vectors.tolist(), metadata, strict=True))
        if filter_oracle.matches(filter, v, m, t)
    }


ITEMS = _items()


@settings(max_examples=150, deadline=None)
@given(filter=_filters(derived=True), temperature=st.sampled_from((0.5, 1.0, 3.0)))
def test_match_filter_agrees_with_the_oracle(filter: dict[str, Any], temperature: float) -> None:
    _, vectors, metadata = ITEMS
    expected = _expected(filter, vectors, metadata, temperature)
    if expected is None:
        with pytest.raises(MixedTypeFilterError):
            match_filter(filter, metadata, vectors, temperature=temperature)
        return
    mask = match_filter(filter, metadata, vectors, temperature=temperature)
    assert set(np.flatnonzero(mask).tolist()) == expected


def test_match_filter_reads_each_distinct_object_through_codes() -> None:
    _, vectors, metadata = ITEMS
    index = FaissIndex(DIM)
    index.upsert([f"i{i}" for i in range(NUM_ITEMS)], vectors, metadata)
    filter = {"$or": [{"a": {"$gte": 2}}, {"b": {"$in": ["x", "z"]}, "confidence": {"$lt": 0.7}}]}
    selection = index._select(filter, 2.0)
    assert selection.mask is not None
    assert set(np.flatnonzero(selection.mask).tolist()) == _expected(filter, vectors, metadata, 2.0)


@pytest.fixture(params=("faiss", "pgvector"))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> VectorStore:
    """A store of each kind holding `ITEMS`."""
    opened = store_of_kind(request, request.param, tmp_path / "faiss", DIM)
    ids, vectors, metadata = ITEMS
    opened.upsert(ids, vectors, metadata)
    return opened


def _search_ids(store: VectorStore, filter: dict[str, Any], temperature: float = 1.0) -> set[str]:
    query = np.zeros(DIM)
    result = store.search(query, NUM_ITEMS, metric="l2", temperature=temperature, filter=filter, exact=True)
    return {n.id for n in result.neighbors[0]}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(filter=_filters(derived=True), temperature=st.sampled_from((0.5, 1.0, 3.0)))
def test_store_filter_agrees_with_the_oracle(store: VectorStore, filter: dict[str, Any], temperature: float) -> None:
    ids, vectors, metadata = ITEMS
    expected = _expected(filter, vectors, metadata, temperature)
    if expected is None:
        with pytest.raises(MixedTypeFilterError):
            _search_ids(store, filter, temperature)
        return
    assert _search_ids(store, filter, temperature) == {ids[i] for i in expected}


@pytest.mark.parametrize(
    "filter",
    [
        {"a": {"$in": [2, 3]}, "b": {"$ne": "x"}},
        {"$or": [{"c": None}, {"c": {"$exists": False}}]},
        {"$not": {"a": {"$gt": 0, "$lte": 2.5}}},
        {"d": {"$nin": [2.5, "x"]}, "predicted": {"$in": [0, 2]}},
        {"c": 1},  # true is not 1, and [1, 2] does not contain 1
        {"d": {"$in": [3, "3"]}},  # both types asked for: nothing skipped, no refusal
    ],
)
def test_store_filter_examples(store: VectorStore, filter: dict[str, Any]) -> None:
    ids, vectors, metadata = ITEMS
    expected = _expected(filter, vectors, metadata, 1.0)
    assert expected is not None
    assert _search_ids(store, filter) == {ids[i] for i in expected}


def test_store_refuses_equalities_that_mix_types_anywhere(store: VectorStore) -> None:
    for filter in ({"d": 3}, {"d": {"$eq": 3.0}}, {"$or": [{"a": 1}, {"d": {"$in": [3, "x"]}}]}, {"$not": {"d": 3}}):
        with pytest.raises(MixedTypeFilterError, match=r'hold the string "3"'):
            _search_ids(store, filter)
    assert _search_ids(store, {"d": {"$ne": 3}})  # $ne and $nin name what they exclude: no refusal


@pytest.mark.parametrize("temperature", [0.5, 1.0, 4.0])
def test_store_filters_on_derived_fields_at_the_request_temperature(store: VectorStore, temperature: float) -> None:
    ids, vectors, metadata = ITEMS
    filter = {"confidence": {"$gte": 0.5}, "$or": [{"margin": {"$lt": 0.4}}, {"entropy": {"$gt": 0.8}}]}
    expected = _expected(filter, vectors, metadata, temperature)
    assert expected
    assert _search_ids(store, filter, temperature) == {ids[i] for i in expected}
    assert _search_ids(store, {"$not": {"entropy": {"$gte": 0}}}) == set()
    assert len(_search_ids(store, {"confidence": {"$in": [0.5]}, "margin": {"$exists": True}})) == 0


def test_grammar_reads_equality_operators_and_combinations() -> None:
    assert parse_filter(None) is None and parse_filter({}) is None
    node = parse_filter({"label": 7, "p": {"$gt": 1, "$lt": 2}, "$or": [{"x": {"$exists": True}}, {"$not": {"y": 1}}]})
    assert to_json(node) == {  # type: ignore[arg-type]
        "$and": [
            {"label": {"$eq": 7}},
            {"$and": [{"p": {"$gt": 1}}, {"p": {"$lt": 2}}]},
            {"$or": [{"x": {"$exists": True}}, {"$not": {"y": {"$eq": 1}}}]},
        ]
    }


@pytest.mark.parametrize(
    ("filter", "message"),
    [
        ([1, 2], "a filter must be a JSON object, not a list"),
        ({"label": {"$regex": "a"}}, "unknown filter operator '$regex' on field 'label'"),
        ({"$nor": []}, "unknown filter operator '$nor'"),
        ({"label": {"$in": 7}}, "$in on 'label' takes a list of values, not a number"),
        ({"label": {"$gt": "a"}}, "$gt on 'label' compares numbers only, not a string"),
        ({"label": {"a": 1}}, "$eq on 'label' compares with an object"),
        ({"label": [7]}, "$eq on 'label' compares with a list"),
        ({"$or": []}, "$or takes a non-empty list of filters"),
        ({"x": {"$exists": 1}}, "$exists on 'x' takes true or false"),
        ({"confidence": "high"}, "the derived field 'confidence' is a number"),
        ({"predicted": "cat"}, "'predicted' takes a class index"),
        ({"predicted": 1.5}, "'predicted' takes a class index"),
        ({"n": {"$gt": 10**400}}, "$gt on 'n' compares with a number beyond the float64 range"),
        ({"n": {"$in": [1, -(10**309)]}}, "$in on 'n' compares with a number beyond the float64 range"),
    ],
)
def test_grammar_refuses_in_one_sentence_saying_what_is_supported(filter: Any, message: str) -> None:
    with pytest.raises(InvalidInputError) as error:
        parse_filter(filter)
    text = str(error.value)
    assert text.startswith(message)
    assert text.count(". ") == 0 and "$nin, $gt, $gte, $lt, $lte or $exists" in text


def test_grammar_limits_depth_and_conditions() -> None:
    deep: dict[str, Any] = {"a": 1}
    for _ in range(MAX_DEPTH - 1):
        deep = {"$not": deep}
    assert parse_filter(deep) is not None
    with pytest.raises(InvalidInputError, match=f"more than {MAX_DEPTH} levels deep"):
        parse_filter({"$not": deep})
    wide = {"$and": [{f"f{i}": i} for i in range(MAX_CONDITIONS)]}
    assert parse_filter(wide) is not None
    with pytest.raises(InvalidInputError, match=f"more than {MAX_CONDITIONS} conditions"):
        parse_filter({"$and": [*wide["$and"], {"one": "more"}]})


def test_with_class_indexes_maps_label_names() -> None:
    labels = ("cat", "dog", "3", "bird")
    mapped = with_class_indexes({"$or": [{"predicted": "dog"}, {"predicted": {"$in": ["3", 0]}}], "x": "dog"}, labels)
    assert mapped == {
        "$and": [{"$or": [{"predicted": {"$eq": 1}}, {"predicted": {"$in": [2, 0]}}]}, {"x": {"$eq": "dog"}}]
    }
    with pytest.raises(InvalidInputError, match="'horse' is not a class label of this index's model"):
        with_class_indexes({"predicted": "horse"}, labels)
    with pytest.raises(InvalidInputError, match="out of range 0..3"):
        with_class_indexes({"predicted": 4}, labels)
