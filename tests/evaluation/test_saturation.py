"""Rank correlations at low T against a tie-resolved reference: every measure in 340-digit mpmath, ranked exactly."""

import itertools

import mpmath
import numpy as np
import pytest
from scipy import stats

from evaluation.markdown import TIES_FLAG
from evaluation.pairwise import PAIRWISE_MEASURES, correlate_measures, measure_pairs, sample_pairs
from evaluation.saturation import order_keys, tied_share
from tests.helpers import precise_divergences

NUM_ITEMS, NUM_PAIRS, SEED = 60, 160, 7


def _logits() -> np.ndarray:
    """Fashion-like: 10 classes, confident rows, so at T = 0.1 most pairs saturate js and tri in float64."""
    rng = np.random.default_rng(33)
    return rng.standard_normal((NUM_ITEMS, 10)) * 4 + np.eye(10)[rng.integers(0, 10, NUM_ITEMS)] * 6


def _tied(ranks: np.ndarray) -> float:
    """Share of entries whose rank is shared with another (counted independently of `tied_share`)."""
    counts = {r: int(np.sum(ranks == r)) for r in ranks}
    return sum(1 for r in ranks if counts[r] > 1) / len(ranks)


def _reference(x: np.ndarray, first: np.ndarray, second: np.ndarray, t: float) -> dict[str, np.ndarray]:
    """Ranks of every measure of `PAIRWISE_MEASURES` over the pairs, from exact (340-digit) values correctly
    rounded to float64: js and tri as `−log(saturation − value)`, which saturation cannot hide; ce and kl (which do
    not saturate) as they are. Values closer than that rounding cannot be told apart in float64 anyway."""
    saturation = {"js": mpmath.log(2), "tri": mpmath.mpf(2)}
    with mpmath.workdps(340):
        true = [precise_divergences(x[i], x[j], t) for i, j in zip(first, second, strict=True)]
        ranks = {m: stats.rankdata([float(-mpmath.log(saturation[m] - row[m])) for row in true]) for m in saturation}
        ranks |= {m: stats.rankdata([float(row[m]) for row in true]) for m in ("ce", "kl")}
    centred = x - x.mean(axis=1, keepdims=True)
    ranks["euclidean"] = stats.rankdata(np.linalg.norm(x[first] - x[second], axis=1))
    ranks["euclidean_centered"] = stats.rankdata(np.linalg.norm(centred[first] - centred[second], axis=1))
    return ranks


@pytest.mark.slow
@pytest.mark.parametrize("temperature", [0.1, 0.3])
def test_pairwise_spearman_matches_the_tie_resolved_reference(temperature: float) -> None:
    x = _logits()
    first, second = sample_pairs(NUM_ITEMS, NUM_PAIRS, SEED)
    values = measure_pairs(x[first], x[second], temperature)
    saturated = float(np.mean(values["tri"] == 2.0))
    reference = _reference(x, first, second, temperature)
    rows = correlate_measures(x, (temperature,), NUM_PAIRS, SEED)
    assert [(r["a"], r["b"]) for r in rows] == list(itertools.combinations(PAIRWISE_MEASURES, 2))
    _, distinct = np.unique(np.minimum(first, second) * NUM_ITEMS + np.maximum(first, second), return_index=True)
    share = {m: _tied(reference[m][distinct]) for m in PAIRWISE_MEASURES}
    assert share["js"] == share["tri"] == share["euclidean"] == 0.0
    naive_errors = []
    for row in rows:
        a, b = row["a"], row["b"]
        expected = stats.pearsonr(reference[a], reference[b]).statistic
        assert row["spearman"] == pytest.approx(expected, abs=1e-12), (a, b, temperature)
        # js, tri and euclidean never tie after resolution; ce and kl tie where their float64-rounded exact values
        # do (at low T, ce(p, q) ≈ −log q_k for one-hot-like p on class k, equal across p to the last bit).
        assert row["spearman_ties"] == pytest.approx(max(share[a], share[b]), abs=1e-12), (a, b, temperature)
        naive_errors.append(abs(stats.spearmanr(values[a], values[b]).statistic - expected))
    if temperature == 0.1:  # the data do exercise the edge: float64 ties that change the figures
        assert saturated > 0.3
        assert max(naive_errors) > 0.02


def test_order_keys_sort_saturated_pairs_in_their_exact_order() -> None:
    x, t = _logits(), 0.1
    first, second = sample_pairs(NUM_ITEMS, 80, SEED)
    _, distinct = np.unique(np.minimum(first, second) * NUM_ITEMS + np.maximum(first, second), return_index=True)
    first, second = first[distinct], second[distinct]  # js and tri are symmetric: a pair either way round ties
    reference = _reference(x, first, second, t)
    for measure in ("js", "tri"):
        values = measure_pairs(x[first], x[second], t)[measure]
        keys = order_keys(measure, values, x[first], x[second], t)
        assert tied_share(values) > 0.3 and tied_share(keys) < 0.1 * tied_share(values)
        np.testing.assert_array_equal(stats.rankdata(keys), reference[measure], err_msg=measure)
    ce = measure_pairs(x[first], x[second], t)["ce"]
    assert order_keys("ce", ce, x[first], x[second], t) is ce


def test_tied_share_and_the_report_flag() -> None:
    assert tied_share(np.array([1.0, 2.0, 2.0, 3.0])) == 0.5
    assert tied_share(np.array([1.0, 2.0])) == 0.0
    assert 0 < TIES_FLAG < 0.5
