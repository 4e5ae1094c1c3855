"""Metric functions against scipy and hand-computed cases."""

import numpy as np
import pytest
from scipy import stats

from evaluation.ranking import (
    kendall_rows,
    label_precision_at_k,
    ndcg_at_k,
    overlap_at_k,
    pearson_rows,
    rank_rows,
    recall_at_k,
    spearman_rows,
    top_k,
)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_correlations_match_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(5, 60))
    b = a + rng.normal(size=(5, 60))
    b[0, :30] = b[0, 0]  # ties on one side
    a[1] = np.round(a[1])  # many ties
    for i in range(5):
        assert pearson_rows(a, b)[i] == pytest.approx(stats.pearsonr(a[i], b[i]).statistic, abs=1e-12)
        assert spearman_rows(a, b)[i] == pytest.approx(stats.spearmanr(a[i], b[i]).statistic, abs=1e-12)
        assert kendall_rows(a, b)[i] == pytest.approx(stats.kendalltau(a[i], b[i]).statistic, abs=1e-12)


def test_correlations_of_constant_row_are_nan() -> None:
    a = np.array([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]])
    b = np.array([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0]])
    np.testing.assert_allclose(spearman_rows(a, b)[0], -1.0)
    assert np.isnan(spearman_rows(a, b)[1]) and np.isnan(pearson_rows(a, b)[1]) and np.isnan(kendall_rows(a, b)[1])


def test_rank_rows_averages_ties() -> None:
    np.testing.assert_array_equal(rank_rows(np.array([[0.5, 0.1, 0.5, 0.2]])), [[3.5, 1.0, 3.5, 2.0]])
    np.testing.assert_array_equal(rank_rows(np.array([[2.0, 2.0, 2.0], [1.0, 0.0, 1.0]])), [[2, 2, 2], [2.5, 1, 2.5]])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rank_rows_match_scipy(seed: int) -> None:
    values = np.round(np.random.default_rng(seed).normal(size=(6, 200)), 1)  # many ties
    np.testing.assert_array_equal(rank_rows(values), stats.rankdata(values, axis=1))


def test_top_k_is_sorted_and_exact(rng: np.random.Generator) -> None:
    d = rng.normal(size=(4, 50))
    for k in (1, 7, 50, 80):
        got = top_k(d, k)
        np.testing.assert_array_equal(got, np.argsort(d, axis=1, kind="stable")[:, : min(k, 50)])


def test_top_k_keeps_position_order_among_ties() -> None:
    np.testing.assert_array_equal(top_k(np.array([[1.0, 0.0, 1.0, 0.0, 2.0]]), 3), [[1, 3, 0]])


def test_overlap_and_recall_by_hand() -> None:
    truth = np.array([[4, 2, 9], [1, 2, 3]])
    found = np.array([[2, 7, 4], [5, 6, 3]])
    np.testing.assert_allclose(overlap_at_k(found, truth), [2 / 3, 1 / 3])
    np.testing.assert_allclose(recall_at_k(found, truth), [1.0, 0.0])  # 4 is found in row 0; 1 is missed in row 1


def test_ndcg_by_hand() -> None:
    truth = np.array([[10, 20, 30], [10, 20, 30], [10, 20, 30], [10, 20, 30]])
    found = np.array([[10, 20, 30], [30, 20, 10], [20, 99, 98], [97, 98, 99]])
    ideal = 3 / np.log2(2) + 2 / np.log2(3) + 1 / np.log2(4)
    reversed_order = 1 / np.log2(2) + 2 / np.log2(3) + 3 / np.log2(4)
    expected = [1.0, reversed_order / ideal, 2 / ideal, 0.0]
    np.testing.assert_allclose(ndcg_at_k(found, truth), expected)


def test_ndcg_matches_sklearn(rng: np.random.Generator) -> None:
    from sklearn.metrics import ndcg_score

    k, n = 5, 30
    scores = rng.normal(size=(6, n))
    true_order = np.argsort(scores, axis=1)[:, :k]  # the reference ranks by ascending score
    found = np.argsort(scores + rng.normal(scale=0.5, size=scores.shape), axis=1)[:, :k]
    relevance = np.zeros((6, n))
    np.put_along_axis(relevance, true_order, k - np.arange(k), axis=1)
    predicted = np.zeros((6, n))
    np.put_along_axis(predicted, found, n - np.arange(k), axis=1)  # higher = ranked earlier
    for i in range(6):
        expected = ndcg_score(relevance[i : i + 1], predicted[i : i + 1], k=k)
        assert ndcg_at_k(found[i : i + 1], true_order[i : i + 1])[0] == pytest.approx(expected)


def test_label_precision_by_hand() -> None:
    item_labels = np.array([0, 0, 1, 1, -1])
    neighbors = np.array([[0, 1, 2, 4], [2, 3, 4, 0], [0, 1, 2, 3]])
    got = label_precision_at_k(neighbors, item_labels, np.array([0, 1, -1]))
    np.testing.assert_allclose(got[:2], [0.5, 0.5])
    assert np.isnan(got[2])
