"""Row-wise divergences for a ranking (`best`): the best values keep every digit, the others stay behind them.

A re-rank needs only its k best values to the last digit; ce, kl and kl_reverse then take their cancellation-free
sums (`indexes.precise`) only for the candidates that may be among them. Oracles: the same values computed in full
(bit for bit, certified against mpmath in test_precision.py), mpmath directly, and scipy for the error's scale.
"""

import mpmath
import numpy as np
import pytest
from scipy.special import log_softmax

from indexes.divergences import compute_divergence
from indexes.errors import InvalidInputError
from tests.helpers import precise_divergences

MEASURES = ("ce", "kl", "kl_reverse")


def _queries_and_candidates(seed: int, num_classes: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """`(q, C)` queries and `(q, m, C)` candidates around them: near-duplicates (where the fast sums cancel),
    exact copies, ties and unrelated rows, in a seeded order."""
    rng = np.random.default_rng(seed)
    queries = rng.standard_normal((6, num_classes)) * scale
    spreads = np.array([0.0, 0.0, 1e-9, 1e-6, 1e-3, 1e-2, 0.1, 0.3, 1.0, 3.0] * 4)[:, None]
    candidates = queries[:, None, :] + spreads * scale * rng.standard_normal((6, len(spreads), num_classes))
    candidates[:, 1] = candidates[:, 5]  # a tie
    return queries, candidates[:, rng.permutation(len(spreads))]


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("t", [0.05, 1.0, 4.0, 50.0])
@pytest.mark.parametrize(("num_classes", "scale"), [(10, 3.0), (1000, 2.0), (300, 1e3)])
def test_the_best_values_are_the_full_ones_bit_for_bit_and_the_rest_rank_behind(
    measure: str, t: float, num_classes: int, scale: float
) -> None:
    queries, candidates = _queries_and_candidates(7, num_classes, scale)
    full = compute_divergence(queries[:, None, :], candidates, measure=measure, temperature=t)
    for best in (1, 10, 39):
        ranked = compute_divergence(queries[:, None, :], candidates, measure=measure, temperature=t, best=best)
        order_full, order_ranked = (np.argsort(v, axis=1, kind="stable")[:, :best] for v in (full, ranked))
        assert np.array_equal(order_ranked, order_full)
        np.testing.assert_array_equal(
            np.take_along_axis(ranked, order_ranked, 1), np.take_along_axis(full, order_full, 1)
        )
        kth = np.take_along_axis(full, order_full[:, -1:], 1)
        rest = np.ones(full.shape, dtype=bool)
        np.put_along_axis(rest, order_full, False, axis=1)
        assert (ranked[rest] >= np.broadcast_to(kth, full.shape)[rest]).all()


@pytest.mark.parametrize("measure", MEASURES)
def test_rows_of_different_outputs_rank_by_their_own_values(measure: str) -> None:
    """Row-wise pairs that differ on both sides: ce ranks by entropy + KL, not by KL alone."""
    rng = np.random.default_rng(5)
    # Peaked rows (low entropy) a little apart rank first by ce; flat rows almost equal rank first by KL.
    a = rng.standard_normal((40, 50)) * np.where(np.arange(40) < 10, 12.0, 0.1)[:, None]
    b = a + np.where(np.arange(40) < 10, 1e-2, 1e-6)[:, None] * rng.standard_normal((40, 50))
    full = compute_divergence(a, b, measure=measure, temperature=4.0)
    ranked = compute_divergence(a, b, measure=measure, temperature=4.0, best=5)
    order = np.argsort(full, kind="stable")[:5]
    assert np.array_equal(np.argsort(ranked, kind="stable")[:5], order)
    np.testing.assert_array_equal(ranked[order], full[order])


@pytest.mark.parametrize("t", [1.0, 4.0, 16.0])  # where the fast sums cancel: KL far below the entropies
def test_values_left_fast_are_far_inside_the_error_bound(t: float) -> None:
    """The fast KL's error, measured against the full values, relative to Σ p|log p| + Σ p|log q| + log C (the
    scale the bound of 1e-8 is stated in): at most a few float64 ulps."""
    queries, candidates = _queries_and_candidates(11, 1000, 2.0)
    full = compute_divergence(queries[:, None, :], candidates, measure="kl", temperature=t)
    fast = compute_divergence(queries[:, None, :], candidates, measure="kl", temperature=t, best=1)
    log_p, log_q = log_softmax(queries / t, axis=1)[:, None, :], log_softmax(candidates / t, axis=2)
    p = np.exp(log_p)
    scale = (p * -log_p).sum(axis=2) + (p * -log_q).sum(axis=2) + np.log(1000)
    assert (fast != full).any(), "no value was left to the fast sums: the test measures nothing"
    assert np.max(np.abs(fast - full) / scale) < 1e-13


@pytest.mark.parametrize("measure", MEASURES)
def test_the_best_values_match_the_arbitrary_precision_oracle(measure: str) -> None:
    queries, candidates = _queries_and_candidates(3, 40, 4.0)
    t = 4.0
    ranked = compute_divergence(queries[:1, None, :], candidates[:1], measure=measure, temperature=t, best=5)[0]
    for j in np.argsort(ranked, kind="stable")[:5]:
        true = precise_divergences(queries[0], candidates[0, j], t)[measure]
        if true == 0:
            assert ranked[j] == 0
        else:
            assert abs((mpmath.mpf(float(ranked[j])) - true) / true) <= 1e-9


def test_best_is_refused_where_it_means_nothing() -> None:
    x = np.zeros((2, 3))
    with pytest.raises(InvalidInputError, match="row-wise"):
        compute_divergence(x, x, measure="kl", pairwise=True, best=1)
    with pytest.raises(InvalidInputError, match=">= 1"):
        compute_divergence(x, x, measure="kl", best=0)
