"""Tests for `indexes.divergences`: scipy oracles, closed forms, properties, extreme numerics, errors, autograd."""

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.spatial.distance import jensenshannon
from scipy.special import entr, rel_entr, softmax, xlogy
from scipy.special import log_softmax as scipy_log_softmax

from indexes import divergences
from indexes.divergences import (
    MEASURES,
    Base,
    InputKind,
    as_matrix,
    compute_divergence,
    compute_divergences,
    log_softmax,
    to_log_probabilities,
)
from indexes.errors import DimensionMismatchError, InvalidInputError, UnknownMetricError
from indexes.validation import check_temperature

pytestmark = pytest.mark.filterwarnings("error")  # no RuntimeWarning (0 * -inf, overflow) may escape the module

FloatArray = npt.NDArray[np.float64]
LN2 = math.log(2.0)
SEEDS = [0, 1, 2]
LOG_MEASURES = ("ce", "kl", "kl_reverse", "js")
PROPERTY_SETTINGS = settings(derandomize=True, database=None, max_examples=60, deadline=None)


def triangular_loop(p: FloatArray, q: FloatArray) -> float:
    total = 0.0
    for p_i, q_i in zip(p.tolist(), q.tolist(), strict=True):
        if p_i + q_i > 0:
            total += (p_i - q_i) ** 2 / (p_i + q_i)
    return total


def oracle(a: FloatArray, b: FloatArray, p: FloatArray, q: FloatArray, base: str) -> dict[str, float]:
    """Every measure for one pair of rows, from scipy: inputs as given (a, b) and their distributions (p, q)."""
    bits = 1.0 / LN2 if base == "2" else 1.0
    return {
        "ce": -float(np.sum(xlogy(p, q))) * bits,
        "kl": float(np.sum(rel_entr(p, q))) * bits,
        "kl_reverse": float(np.sum(rel_entr(q, p))) * bits,
        "js": float(jensenshannon(p, q, base=2.0 if base == "2" else None)) ** 2,
        "tri": triangular_loop(p, q),
        "euclidean": float(np.linalg.norm(a - b)),
    }


def random_inputs(
    seed: int, input: InputKind, temperature: float, n: int, m: int, num_classes: int = 9
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Seeded (a, b, p, q): logits scaled by 4, or probabilities (with p = a, q = b)."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(n, num_classes)) * 4, rng.normal(size=(m, num_classes)) * 4
    if input == "probabilities":
        a, b = softmax(a, axis=1), softmax(b, axis=1)
        return a, b, a, b
    return a, b, softmax(a / temperature, axis=1), softmax(b / temperature, axis=1)


INPUT_CASES: list[tuple[InputKind, float]] = [("logits", 1.0), ("logits", 0.3), ("logits", 5.0), ("probabilities", 1.0)]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("base", ["e", "2"])
@pytest.mark.parametrize(("input", "temperature"), INPUT_CASES)
def test_rowwise_matches_scipy_oracle(seed: int, base: Base, input: InputKind, temperature: float) -> None:
    a, b, p, q = random_inputs(seed, input, temperature, n=6, m=6)
    values = compute_divergences(a, b, input=input, temperature=temperature, base=base)
    for row in range(6):
        expected = oracle(a[row], b[row], p[row], q[row], base)
        for name in MEASURES:
            assert values[name].shape == (6,) and values[name].dtype == np.float64
            np.testing.assert_allclose(values[name][row], expected[name], rtol=1e-9, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("base", ["e", "2"])
@pytest.mark.parametrize(("input", "temperature"), INPUT_CASES)
def test_pairwise_matches_per_pair_oracle(seed: int, base: Base, input: InputKind, temperature: float) -> None:
    a, b, p, q = random_inputs(seed + 10, input, temperature, n=5, m=4)
    values = compute_divergences(a, b, input=input, temperature=temperature, base=base, pairwise=True)
    for i in range(5):
        for j in range(4):
            expected = oracle(a[i], b[j], p[i], q[j], base)
            for name in MEASURES:
                assert values[name].shape == (5, 4)
                np.testing.assert_allclose(values[name][i, j], expected[name], rtol=1e-9, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("pairwise", [False, True])
def test_probabilities_with_zeros_give_inf_not_nan(seed: int, pairwise: bool) -> None:
    rng = np.random.default_rng(seed)
    raw = rng.random((8, 6)) * (rng.random((8, 6)) < 0.6)
    raw[:, 0] += 0.1  # no all-zero row
    probs = raw / raw.sum(axis=1, keepdims=True)
    a, b = probs[:4], probs[4:]
    values = compute_divergences(a, b, input="probabilities", pairwise=pairwise)
    pairs = [(i, j) for i in range(4) for j in range(4)] if pairwise else [(i, i) for i in range(4)]
    for i, j in pairs:
        expected = oracle(a[i], b[j], a[i], b[j], "e")
        for name in MEASURES:
            got = values[name][i, j] if pairwise else values[name][i]
            assert not np.isnan(got), name
            np.testing.assert_allclose(got, expected[name], rtol=1e-9, atol=1e-12, err_msg=name)
    assert np.isinf(values["kl"]).any() and np.isinf(values["ce"]).any()  # the zeros do meet positive mass
    assert np.isfinite(values["js"]).all() and np.isfinite(values["tri"]).all()


def test_closed_forms_for_half_half_against_quarter_three_quarters() -> None:
    p, q = [0.5, 0.5], [0.25, 0.75]
    values = compute_divergences(p, q, input="probabilities")
    expected = {
        "ce": 0.5 * math.log(16 / 3),
        "kl": 0.5 * math.log(4 / 3),
        "kl_reverse": -0.25 * LN2 + 0.75 * math.log(1.5),
        "js": 0.25 * math.log(16 / 15) + 0.5 * (0.25 * math.log(2 / 3) + 0.75 * math.log(6 / 5)),
        "tri": 2 / 15,
        "euclidean": math.sqrt(2) / 4,
    }
    for name, value in expected.items():
        np.testing.assert_allclose(values[name], [value], rtol=1e-13, err_msg=name)
    # Same distributions from logits: softmax([0, ln 3]) = [1/4, 3/4], here at T = 2.
    from_logits = compute_divergences([0.0, 0.0], [0.0, 2 * math.log(3)], temperature=2.0, base="2")
    for name in LOG_MEASURES:
        np.testing.assert_allclose(from_logits[name], [expected[name] / LN2], rtol=1e-13, err_msg=name)
    np.testing.assert_allclose(from_logits["tri"], [2 / 15], rtol=1e-13)
    np.testing.assert_allclose(from_logits["euclidean"], [2 * math.log(3)], rtol=1e-13)


def test_closed_forms_for_disjoint_and_identical_distributions() -> None:
    values = compute_divergences([[1.0, 0.0], [0.3, 0.7]], [[0.0, 1.0], [0.3, 0.7]], input="probabilities")
    np.testing.assert_array_equal(values["ce"], [np.inf, -(0.3 * math.log(0.3) + 0.7 * math.log(0.7))])
    np.testing.assert_array_equal(values["kl"], [np.inf, 0.0])
    np.testing.assert_array_equal(values["kl_reverse"], [np.inf, 0.0])
    np.testing.assert_allclose(values["js"], [LN2, 0.0], atol=1e-15)
    np.testing.assert_allclose(values["tri"], [2.0, 0.0], atol=1e-15)
    np.testing.assert_allclose(values["euclidean"], [math.sqrt(2), 0.0], atol=1e-15)
    np.testing.assert_allclose(compute_divergence([1, 0], [0, 1], measure="js", input="probabilities", base="2"), [1])


@st.composite
def logit_pairs(draw: st.DrawFn) -> tuple[FloatArray, FloatArray, float]:
    num_classes, rows = draw(st.integers(2, 12)), draw(st.integers(1, 4))
    elements = st.floats(-30, 30, allow_nan=False, allow_infinity=False)
    a = draw(hnp.arrays(np.float64, (rows, num_classes), elements=elements))
    b = draw(hnp.arrays(np.float64, (rows, num_classes), elements=elements))
    return a, b, draw(st.sampled_from([0.1, 0.5, 1.0, 2.0, 10.0]))


@PROPERTY_SETTINGS
@given(logit_pairs())
def test_properties_of_kl_and_ce(case: tuple[FloatArray, FloatArray, float]) -> None:
    a, b, t = case
    ab = compute_divergences(a, b, temperature=t)
    ba = compute_divergences(b, a, temperature=t)
    aa = compute_divergences(a, a, temperature=t)
    np.testing.assert_array_equal(aa["kl"], 0.0)
    assert (ab["kl"] >= 0).all() and (ab["ce"] >= 0).all()
    tolerance = 1e-9 * (1 + np.abs(ab["ce"]))
    assert (np.abs(ab["ce"] - (aa["ce"] + ab["kl"])) <= tolerance).all()  # CE = H(p) + KL
    np.testing.assert_array_equal(ab["kl_reverse"], ba["kl"])
    np.testing.assert_allclose(aa["ce"], entr(softmax(a / t, axis=1)).sum(axis=1), rtol=1e-9, atol=1e-12)
    matrix = compute_divergences(a, a, measures=["kl", "kl_reverse"], temperature=t, pairwise=True)
    assert (np.abs(np.diag(matrix["kl"])) <= 1e-12 * (1 + aa["ce"])).all()
    np.testing.assert_allclose(matrix["kl_reverse"], matrix["kl"].T, rtol=1e-9, atol=1e-9)


@PROPERTY_SETTINGS
@given(logit_pairs())
def test_properties_of_js_and_tri(case: tuple[FloatArray, FloatArray, float]) -> None:
    a, b, t = case
    ab = compute_divergences(a, b, measures=["js", "tri"], temperature=t)
    ba = compute_divergences(b, a, measures=["js", "tri"], temperature=t)
    np.testing.assert_allclose(ab["js"], ba["js"], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(ab["tri"], ba["tri"], rtol=1e-12, atol=1e-15)
    assert ((ab["js"] >= 0) & (ab["js"] <= LN2)).all()
    assert ((ab["tri"] >= 0) & (ab["tri"] <= 2)).all()
    assert (ab["tri"] / 4 <= ab["js"] + 1e-12).all()
    assert (ab["js"] <= LN2 / 2 * ab["tri"] + 1e-12).all()
    np.testing.assert_allclose(compute_divergences(a, a, measures=["js", "tri"], temperature=t)["js"], 0, atol=1e-15)


@PROPERTY_SETTINGS
@given(logit_pairs())
def test_properties_of_base_and_pairwise_consistency(case: tuple[FloatArray, FloatArray, float]) -> None:
    a, b, t = case
    nats = compute_divergences(a, b, temperature=t)
    bits = compute_divergences(a, b, temperature=t, base="2")
    for name in LOG_MEASURES:
        np.testing.assert_allclose(bits[name], nats[name] / LN2, rtol=1e-15, err_msg=name)
    for name in ("tri", "euclidean"):  # no logarithm: the base does not apply
        np.testing.assert_array_equal(bits[name], nats[name])
    matrix = compute_divergences(a, b, temperature=t, pairwise=True)
    for name in MEASURES:
        scale = 1 + np.abs(nats[name])
        assert (np.abs(np.diag(matrix[name]) - nats[name]) <= 1e-9 * scale).all(), name


@pytest.mark.parametrize(("input", "temperature"), INPUT_CASES)
def test_rows_broadcast_over_leading_axes(input: InputKind, temperature: float) -> None:
    # Queries (q, 1, C) against their candidates (q, m, C), some equal or next to the query so that the compensated
    # refinement runs on scattered entries: each query's values are its own row-wise comparison, and scipy's.
    a, b, _, _ = random_inputs(7, input, temperature, n=4, m=20)
    queries, candidates = a[:, None, :], b.reshape(4, 5, -1).copy()
    candidates[1, 2] = queries[1, 0]
    candidates[3, 0] = queries[3, 0] * (1 + 1e-12) if input == "logits" else queries[3, 0]
    measures = [*MEASURES, "l2_centered", "cosine"] if input == "logits" else list(MEASURES)
    values = compute_divergences(queries, candidates, measures=measures, input=input, temperature=temperature)
    p = softmax(queries / temperature, axis=-1) if input == "logits" else queries
    q = softmax(candidates / temperature, axis=-1) if input == "logits" else candidates
    for i in range(4):
        own = compute_divergences(queries[i, 0], candidates[i], measures=measures, input=input, temperature=temperature)
        for name in measures:
            assert values[name].shape == (4, 5), name
            np.testing.assert_allclose(values[name][i], own[name], rtol=1e-13, atol=1e-16, err_msg=name)
        for j in range(5):
            if (i, j) in ((1, 2), (3, 0)):
                continue  # scipy's JS of (near) equal rows is the square root of a rounding error below 0
            expected = oracle(queries[i, 0], candidates[i, j], p[i, 0], q[i, j], "e")
            for name in MEASURES:
                np.testing.assert_allclose(values[name][i, j], expected[name], rtol=1e-9, atol=1e-12, err_msg=name)
    assert values["kl"][1, 2] == 0.0 and values["euclidean"][1, 2] == 0.0
    grid = compute_divergence(np.zeros((2, 1, 3, 4)), np.ones((5, 1, 4)), measure="js")
    assert grid.shape == (2, 5, 3) and np.all(grid == 0.0)


def test_single_row_is_broadcast_against_many_rows() -> None:
    rng = np.random.default_rng(3)
    one, many = rng.normal(size=5), rng.normal(size=(4, 5))
    tiled = np.tile(one, (4, 1))
    for x, y, tx, ty in ((one, many, tiled, many), (many, one[None], many, tiled)):
        got, expected = compute_divergences(x, y), compute_divergences(tx, ty)
        for name in MEASURES:
            assert got[name].shape == (4,)
            np.testing.assert_allclose(got[name], expected[name], rtol=1e-12, atol=1e-15, err_msg=name)
    assert compute_divergence(one, one, measure="kl").shape == (1,)
    assert compute_divergence(one, many, measure="js", pairwise=True).shape == (1, 4)


@pytest.mark.parametrize("seed", SEEDS)
def test_blocked_pairwise_kernels_match_one_block(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(13, 6)) * 3, rng.normal(size=(11, 6)) * 3
    b[:5] = a[3:8] + 1e-9  # five near pairs, refined exactly by euclidean in two chunks
    whole = compute_divergences(a, b, pairwise=True)
    monkeypatch.setattr(divergences, "_BLOCK_ELEMENTS", 20)  # 3 columns x 1 row blocks; euclidean chunks of 3
    blocked = compute_divergences(a, b, pairwise=True)
    for name in MEASURES:
        np.testing.assert_allclose(blocked[name], whole[name], rtol=1e-13, atol=1e-15, err_msg=name)


@pytest.mark.parametrize("num_threads", [1, 2, 3, 64])
def test_pairwise_kernels_give_the_same_values_on_any_thread_count(
    num_threads: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(17, 8)) * 3, rng.normal(size=(9, 8)) * 3
    monkeypatch.setattr(divergences, "_BLOCK_ELEMENTS", 24)  # 3 columns x 1 row: 51 blocks to share out
    monkeypatch.setattr(divergences, "_num_threads", 1)
    serial = compute_divergences(a, b, measures=["js", "tri"], pairwise=True)
    divergences.set_num_threads(num_threads)
    threaded = compute_divergences(a, b, measures=["js", "tri"], pairwise=True)
    p, q = softmax(a, axis=1), softmax(b, axis=1)
    oracle = np.array([[jensenshannon(pi, qj) ** 2 for qj in q] for pi in p])
    for name in ("js", "tri"):
        np.testing.assert_array_equal(threaded[name], serial[name], err_msg=name)  # bit for bit
    np.testing.assert_allclose(threaded["js"], oracle, atol=1e-12)


def test_set_num_threads_rejects_less_than_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(divergences, "_num_threads", 2)
    with pytest.raises(InvalidInputError, match="num_threads must be >= 1"):
        divergences.set_num_threads(0)
    assert divergences._num_threads == 2


@pytest.mark.parametrize("seed", SEEDS)
def test_pairwise_euclidean_keeps_relative_accuracy_for_near_duplicates(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(20, 50)) * 1e4
    b = np.concatenate([a[:10] + rng.normal(size=(10, 50)) * 1e-6, rng.normal(size=(5, 50)) * 1e4])
    got = compute_divergence(a, b, measure="euclidean", pairwise=True)
    expected = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=-1)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    np.testing.assert_array_equal(compute_divergence(a, a, measure="euclidean", pairwise=True).diagonal(), 0.0)


def longdouble_oracle(a: FloatArray, b: FloatArray, temperature: float) -> dict[str, npt.NDArray[np.longdouble]]:
    """Row-wise ce, kl, js and tri computed in extended precision (x87 80-bit on x86-64)."""

    def logp(x: FloatArray) -> npt.NDArray[np.longdouble]:
        z = x.astype(np.longdouble) / np.longdouble(temperature)
        z = z - z.max(axis=1, keepdims=True)
        result: npt.NDArray[np.longdouble] = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return result

    lp, lq = logp(a), logp(b)
    p, q = np.exp(lp), np.exp(lq)
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):  # m underflows to 0 where both p and q do; masked
        lm = np.log(m)
        js = 0.5 * np.where(p > 0, p * (lp - lm), 0).sum(axis=1) + 0.5 * np.where(q > 0, q * (lq - lm), 0).sum(axis=1)
        tri = np.where(m > 0, (p - q) ** 2 / (2 * m), 0).sum(axis=1)
    return {"ce": -(p * lq).sum(axis=1), "kl": (p * (lp - lq)).sum(axis=1), "js": js, "tri": tri}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("temperature", [0.01, 1000.0])
def test_extreme_logits_are_finite_and_match_extended_precision(seed: int, temperature: float) -> None:
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(-1e4, 1e4, size=(4, 1000)), rng.uniform(-1e4, 1e4, size=(4, 1000))
    b[0] = a[0] + rng.normal(size=1000)  # a close pair, so not every value saturates
    lp = log_softmax(a, temperature)
    scale = np.abs(lp).max()  # up to 2e6 at T = 0.01: both sides round at ~1e-16 of it
    np.testing.assert_allclose(lp, scipy_log_softmax(a / temperature, axis=1), rtol=1e-12, atol=1e-15 * scale)
    rows = compute_divergences(a, b, temperature=temperature)
    matrix = compute_divergences(a, b, temperature=temperature, pairwise=True)
    expected = longdouble_oracle(a, b, temperature)
    for name in MEASURES:
        assert np.isfinite(rows[name]).all() and np.isfinite(matrix[name]).all(), name
    for name, values in expected.items():
        np.testing.assert_allclose(rows[name], values.astype(np.float64), rtol=1e-9, atol=1e-12, err_msg=name)
        np.testing.assert_allclose(np.diag(matrix[name]), rows[name], rtol=1e-9, atol=1e-9, err_msg=name)


@pytest.mark.parametrize("temperature", [1e-3, 1.0, 1e3])
def test_huge_logits_never_give_inf_or_nan(temperature: float) -> None:
    rng = np.random.default_rng(0)
    a, b = rng.uniform(-1e300, 1e300, size=(3, 20)), rng.uniform(-1e300, 1e300, size=(2, 20))
    for pairwise in (False, True):
        values = compute_divergences(a, b[:1] if not pairwise else b, temperature=temperature, pairwise=pairwise)
        for name in MEASURES:
            assert np.isfinite(values[name]).all(), (name, pairwise)
    expected = np.linalg.norm(a[:, None] / 1e300 - b[None] / 1e300, axis=-1) * 1e300
    np.testing.assert_allclose(compute_divergence(a, b, measure="euclidean", pairwise=True), expected, rtol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("temperature", [0.5, 1.0, 3.0])
def test_ce_gradient_identity_matches_torch_autograd(seed: int, temperature: float) -> None:
    rng = np.random.default_rng(seed)
    num_classes = 7
    labels = rng.integers(0, num_classes, size=5)
    y = np.eye(num_classes)[labels]
    z = torch.tensor(rng.normal(size=(5, num_classes)) * 3, dtype=torch.float64, requires_grad=True)
    loss = -(torch.from_numpy(y) * torch.log_softmax(z / temperature, dim=1)).sum(dim=1)
    (grad,) = torch.autograd.grad(loss.sum(), z)
    probs = torch.softmax(z.detach() / temperature, dim=1).numpy()
    np.testing.assert_allclose(grad.numpy(), (probs - y) / temperature, rtol=1e-10, atol=1e-13)
    ours = compute_divergence(y, probs, measure="ce", input="probabilities")
    np.testing.assert_allclose(ours, loss.detach().numpy(), rtol=1e-10)
    torch_ce = torch.nn.functional.cross_entropy(z.detach() / temperature, torch.from_numpy(labels), reduction="none")
    np.testing.assert_allclose(ours, torch_ce.numpy(), rtol=1e-10)
    # The same identity for logits on both sides, by central differences: d ce(a, b) / d b = (q - p) / T.
    a, b, step = rng.normal(size=num_classes) * 2, z.detach().numpy()[0], 1e-6
    numeric = [
        (
            compute_divergence(a, b + step * e, measure="ce", temperature=temperature)[0]
            - compute_divergence(a, b - step * e, measure="ce", temperature=temperature)[0]
        )
        / (2 * step)
        for e in np.eye(num_classes)
    ]
    analytic = (softmax(b / temperature) - softmax(a / temperature)) / temperature
    np.testing.assert_allclose(numeric, analytic, rtol=1e-5, atol=1e-8)


def test_compute_divergences_returns_requested_measures_in_order() -> None:
    a, b = [[1.0, 2.0, 3.0]], [[3.0, 2.0, 1.0]]
    values = compute_divergences(a, b, measures=["tri", "ce", "tri"])
    assert list(values) == ["tri", "ce"]
    assert list(compute_divergences(a, b)) == list(MEASURES)
    assert list(compute_divergences(a, b, measures="kl")) == ["kl"]
    np.testing.assert_array_equal(compute_divergence(a, b, measure="ce"), values["ce"])


def test_helpers_convert_and_validate() -> None:
    matrix = as_matrix([1, 2, 3], "a")
    assert matrix.shape == (1, 3) and matrix.dtype == np.float64
    assert check_temperature(2) == 2.0 and isinstance(check_temperature(np.float64(0.5)), float)
    probs = np.array([[0.5, 0.5, 0.0]])
    log_probs = to_log_probabilities(probs, input="probabilities", temperature=1.0)
    np.testing.assert_array_equal(log_probs, [[-LN2, -LN2, -np.inf]])
    np.testing.assert_allclose(
        to_log_probabilities(matrix, input="logits", temperature=2.0), scipy_log_softmax(matrix / 2, axis=1)
    )
    with pytest.raises(InvalidInputError, match=r"p must be finite, got nan at row 0, column 1"):
        to_log_probabilities([[0.5, np.nan]], input="probabilities", temperature=1.0, name="p")


BAD_INPUTS = [
    ({"a": [[1.0, np.nan, 0.0]]}, InvalidInputError, r"a must be finite, got nan at row 0, column 1"),
    ({"b": [[0.0, 1.0, 2.0], [0.0, 1.0, np.inf]]}, InvalidInputError, r"b must be finite, got inf at row 1, column 2"),
    ({"b": [[1.0, 2.0]]}, DimensionMismatchError, r"same number of classes, got 3 and 2"),
    ({"a": []}, InvalidInputError, r"a must not be empty"),
    ({"b": [[]]}, InvalidInputError, r"b must not be empty"),
    ({"a": [[1.0, 2.0, 3.0], [1.0]]}, InvalidInputError, r"a must be a rectangular .* not ragged"),
    ({"a": np.zeros((1, 1, 3)), "pairwise": True}, InvalidInputError, r"a must have shape \(C,\) or \(n, C\)"),
    ({"a": np.zeros((2, 1, 3)), "b": np.zeros((3, 4, 3))}, InvalidInputError, r"broadcast, got \(2, 1\) and \(3, 4\)"),
    ({"b": np.zeros((2, 2, 3))}, InvalidInputError, r"broadcast, got \(3,\) and \(2, 2\)"),
    (
        {"b": np.where(np.arange(18).reshape(2, 3, 3) == 5, np.nan, 0.0)},
        InvalidInputError,
        r"b must be finite, got nan at index \(0, 1, 2\)",
    ),
    ({"a": 3.0}, InvalidInputError, r"a must have shape"),
    ({"a": [["x", "y", "z"]]}, InvalidInputError, r"a must hold real numbers"),
    ({"temperature": 0.0}, InvalidInputError, r"temperature must be a finite number > 0, got 0.0"),
    ({"temperature": -1.0}, InvalidInputError, r"temperature must be a finite number > 0"),
    ({"temperature": float("nan")}, InvalidInputError, r"temperature must be a finite number > 0, got nan"),
    ({"temperature": float("inf")}, InvalidInputError, r"temperature must be a finite number > 0"),
    ({"base": "10"}, InvalidInputError, r"base must be 'e' or '2'"),
    ({"input": "scores"}, InvalidInputError, r"input must be 'logits' or 'probabilities'"),
    ({"measures": ["kl", "hellinger"]}, UnknownMetricError, r"'hellinger'.*ce, kl, kl_reverse, js, tri, euclidean"),
    ({"measures": []}, InvalidInputError, r"measures must name at least one"),
    ({"b": np.zeros((2, 3))}, InvalidInputError, r"got 3 and 2; pass pairwise=True"),
]


@pytest.mark.parametrize(("overrides", "error", "message"), BAD_INPUTS)
def test_invalid_requests_raise_named_errors(overrides: dict[str, Any], error: type[Exception], message: str) -> None:
    kwargs = {"a": np.zeros((3, 3)), "b": np.zeros((3, 3)), **overrides}
    with pytest.raises(error, match=message):
        compute_divergences(**kwargs)


BAD_PROBABILITIES = [
    ({"b": [[0.5, 0.5], [0.5, 0.4]]}, r"b rows must sum to 1 \(within 1e-4\), but row 1 sums to 0.9"),
    ({"a": [[1.2, -0.2], [0.5, 0.5]]}, r"a must be >= 0, but row 0 has -0.2"),
    ({"b": [[[1.0, 0.0], [0.0, 1.0]], [[0.5, 0.5], [0.5, 0.25]]]}, r"b rows must sum to 1 .* row 3 sums to 0.75"),
    ({"b": [[[1.0, 0.0], [0.0, 1.0]], [[1.5, -0.5], [0.5, 0.5]]]}, r"b must be >= 0, but row 2 has -0.5"),
    ({"temperature": 2.0}, r"temperature must be 1 with probability input"),
]


@pytest.mark.parametrize(("overrides", "message"), BAD_PROBABILITIES)
def test_invalid_probabilities_raise_named_errors(overrides: dict[str, Any], message: str) -> None:
    kwargs = {"a": [[0.5, 0.5], [0.25, 0.75]], "b": [[1.0, 0.0], [0.0, 1.0]], "input": "probabilities", **overrides}
    with pytest.raises(InvalidInputError, match=message):
        compute_divergences(**kwargs)


def test_probability_rows_within_tolerance_are_renormalised() -> None:
    values = compute_divergences([[0.50004, 0.50004]], [[0.5, 0.5]], input="probabilities")
    np.testing.assert_allclose(values["kl"], [0.0], atol=1e-15)
    np.testing.assert_allclose(values["euclidean"], [0.00004 * math.sqrt(2)], rtol=1e-9)  # on the inputs as given


def test_unknown_measure_is_a_key_error_with_a_readable_message() -> None:
    with pytest.raises(KeyError) as info:
        compute_divergence([1.0, 2.0], [2.0, 1.0], measure="hamming")
    assert isinstance(info.value, UnknownMetricError)
    assert str(info.value).startswith("unknown divergence measure 'hamming'; valid measures: ce, kl")
