"""FaissIndex: exact search against numpy brute force, ids kept in step across upsert and delete."""

import numpy as np
import pytest

from indexes.device import configure_cpu
from indexes.errors import ItemNotFoundError, MixedTypeFilterError
from indexes.faiss_index import FaissIndex
from tests.helpers import assert_matches_brute_force, brute_force_l2


def _filled(rng: np.random.Generator, n: int = 500, dim: int = 10) -> tuple[FaissIndex, np.ndarray, list[str]]:
    index = FaissIndex(dim)
    vectors = (rng.standard_normal((n, dim)) * 5).astype(np.float32)
    ids = [f"item-{i}" for i in range(n)]
    index.upsert(ids, vectors, [{"label": i % 7, "even": i % 2 == 0} for i in range(n)])
    return index, vectors, ids


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("num_queries", [1, 37, 256])
@pytest.mark.parametrize("k", [1, 10, 500, 900])
def test_search_matches_brute_force(seed: int, num_queries: int, k: int) -> None:
    configure_cpu(2)  # BLAS kernel from 20 queries on: the re-rank must still give exact distances
    rng = np.random.default_rng(seed)
    index, vectors, ids = _filled(rng)
    queries = (rng.standard_normal((num_queries, 10)) * 5).astype(np.float32)
    result = index.search(queries, k)
    assert_matches_brute_force(result, brute_force_l2(queries, vectors), ids, k)


def test_search_own_vector_at_distance_zero(rng: np.random.Generator) -> None:
    index, vectors, ids = _filled(rng)
    vectors_far = vectors * 1000  # large norms: ||x||^2 + ||y||^2 - 2xy would lose everything to cancellation
    index.upsert(ids, vectors_far, [{}] * len(ids))
    result = index.search(vectors_far[:64], 1)
    assert [hits[0].id for hits in result.neighbors] == ids[:64]
    assert max(hits[0].distance for hits in result.neighbors) == 0.0


def test_upsert_replaces_and_delete_moves_rows(rng: np.random.Generator) -> None:
    index, vectors, ids = _filled(rng, n=50)
    replacement = (rng.standard_normal((2, 10))).astype(np.float32)
    index.upsert(["item-3", "new"], replacement, [{"v": 1}, {"v": 2}])
    index.delete("item-0")  # the last row moves into row 0
    index.delete("new")
    assert index.count() == 49
    np.testing.assert_array_equal(index.get("item-3").logits, replacement[0])
    assert index.get("item-3").metadata == {"v": 1}
    np.testing.assert_array_equal(index.get("item-49").logits, vectors[49])
    with pytest.raises(ItemNotFoundError):
        index.get("item-0")
    expected = {f"item-{i}": vectors[i] for i in range(1, 50)}
    expected["item-3"] = replacement[0]
    remaining = list(expected)
    queries = rng.standard_normal((5, 10)).astype(np.float32)
    result = index.search(queries, 49)
    assert_matches_brute_force(result, brute_force_l2(queries, np.stack(list(expected.values()))), remaining, 49)


def test_filter_restricts_to_matching_rows(rng: np.random.Generator) -> None:
    index, vectors, ids = _filled(rng)
    queries = rng.standard_normal((4, 10)).astype(np.float32)
    for filter in ({"label": 3}, {"label": 3, "even": True}, {"predicted": 2}, {"label": 3.0}):
        mask = np.ones(len(ids), bool)
        for key, value in filter.items():
            if key == "predicted":
                mask &= vectors.argmax(1) == value
            elif key == "label":
                mask &= np.arange(len(ids)) % 7 == value
            else:
                mask &= (np.arange(len(ids)) % 2 == 0) == value
        kept = [i for i, m in zip(ids, mask, strict=True) if m]
        result = index.search(queries, 10, filter)
        assert_matches_brute_force(result, brute_force_l2(queries, vectors[mask]), kept, 10)


def test_filter_is_type_strict(rng: np.random.Generator) -> None:
    index, _, _ = _filled(rng)
    queries = rng.standard_normal((1, 10)).astype(np.float32)
    assert index.search(queries, 5, {"label": "three"}).neighbors == [[]]
    assert index.search(queries, 5, {"even": 1}).neighbors == [[]]  # true is not 1
    assert index.search(queries, 5, {"missing": None}).neighbors == [[]]
    assert len(index.search(queries, 5, {"label": 3.0}).neighbors[0]) == 5  # 3 and 3.0 are one JSON number
    with pytest.raises(MixedTypeFilterError, match=r"71 item\(s\) hold the number 3 in 'label'"):
        index.search(queries, 5, {"label": "3"})  # would match none of the items labelled 3: said, not skipped


def test_filter_on_a_field_of_mixed_types_says_so(rng: np.random.Generator) -> None:
    index = FaissIndex(4)
    vectors = rng.standard_normal((5, 4)).astype(np.float32)
    labels: list[object] = [7, "7", "7.0", 8, "cats"]
    index.upsert([f"i{n}" for n in range(5)], vectors, [{"label": label} for label in labels])
    queries = vectors[:1]
    with pytest.raises(MixedTypeFilterError) as error:
        index.search(queries, 5, {"label": 7})
    message = str(error.value)
    assert 'filter {"label": 7} matches the number 7, but 2 item(s) hold the string "7" in \'label\'' in message
    with pytest.raises(MixedTypeFilterError, match=r"1 item\(s\) hold the number 7"):
        index.search(queries, 5, {"label": "7"})
    assert [n.id for n in index.search(queries, 5, {"label": 8}).neighbors[0]] == ["i3"]  # no "8": no conflict
    assert [n.id for n in index.search(queries, 5, {"label": "cats"}).neighbors[0]] == ["i4"]


def test_list_pages_in_insertion_order(rng: np.random.Generator) -> None:
    index, vectors, ids = _filled(rng, n=30)
    pages = [index.list(offset, 7) for offset in range(0, 30, 7)]
    assert [item.id for page in pages for item in page] == ids
    index.delete(ids[3])  # the last row moves into its hole; the listing order does not change
    index.upsert([ids[10], "new"], vectors[:2], [{"replaced": True}, {}])
    expected = [i for i in ids if i != ids[3]] + ["new"]
    listed = index.list(0, 100)
    assert [item.id for item in listed] == expected  # a replaced item keeps its place, a new one goes last
    assert listed[expected.index(ids[10])].metadata == {"replaced": True}
    rows = index.insertion_rows()
    assert rows is not None and [index.ids[r] for r in rows] == expected


def test_empty_index_returns_empty_results() -> None:
    index = FaissIndex(4)
    result = index.search(np.zeros((2, 4), np.float32), 3)
    assert result.neighbors == [[], []]
