"""Divergences to the last digit: KL, JS and triangular as sums of non-negative terms that do not cancel.

The plain formulas lose everything when two outputs are close: `Σ p log p − Σ p log q` subtracts two nearly
equal sums, and `log p − log q` subtracts two nearly equal logarithms. Here every divergence is a sum of
non-negative terms of the log-ratio `u = log p − log q`, and `u` itself is computed without cancellation:

- logits: `u = d − δ` with `d = (x − y − (x_r − y_r)) / T` (differences of the inputs, carried in two doubles,
  `r` the argmax of q) and `δ = log Σ q e^d = log1p(Σ q expm1(d))`, wherever `|δ| ≤ 1`; elsewhere the two
  log-probabilities are far enough apart for `log p − log q` to be accurate;
- probabilities: `log1p((x − y) / y) − log1p(Σ(x − y) / Σy)` where x and y are within a factor of 2 (then
  `x − y` is exact).

With `p = q e^u`: `KL(p‖q) = Σ q φ(u)`, `φ(u) = u e^u − e^u + 1 ≥ 0` (a series for small |u|, else `p u − p + q`);
`JS = ½ Σ m [φ(a) + φ(b)]` with `a = log(p/m)`, `b = log(q/m)`, `m = (p + q) / 2`; `tri = Σ q expm1(u)² / (2 +
expm1(u))`. All functions take broadcastable `(..., C)` float64 arrays and reduce the last axis.
"""

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

_SERIES_BOUND = 0.5  # |u| below this: φ by its series; above, the direct form loses at most ~1 digit
# φ(u) = Σ_{k≥2} (k−1) u^k / k!; 22 terms reach 0.5^22 / 22! ≈ 1e-28 relative to u²/2.
_PHI_COEFFICIENTS = np.array([(k - 1) / float(np.prod(np.arange(1, k + 1, dtype=np.float64))) for k in range(2, 24)])


def _two_difference(x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
    """`x − y = hi + lo` exactly (Knuth's TwoSum), elementwise."""
    hi = x - y
    x_part = hi + y
    y_part = x_part - hi
    lo = (x - x_part) - (y_part - y)
    return hi, lo


def phi(u: FloatArray) -> FloatArray:
    """`u e^u − e^u + 1` (≥ 0), to full relative precision near 0; only for |u| below `_SERIES_BOUND`."""
    result = np.zeros_like(u)
    for coefficient in _PHI_COEFFICIENTS[::-1]:  # Horner on u² (c₂ + u (c₃ + ...))
        result = result * u + coefficient
    result *= u * u
    return result


def log_ratio_of_logits(x: FloatArray, y: FloatArray, log_p: FloatArray, log_q: FloatArray, t: float) -> FloatArray:
    """`log p − log q` for `p = softmax(x / T)`, `q = softmax(y / T)`, accurate also when `x ≈ y`.

    Args:
        x, y: `(..., C)` logits, broadcastable; log_p, log_q: their log-softmax at T (same shapes).
    """
    hi, lo = _two_difference(*np.broadcast_arrays(x, y))
    reference = np.argmax(np.broadcast_to(log_q, hi.shape), axis=-1)[..., None]
    with np.errstate(over="ignore", invalid="ignore"):
        d = ((hi - np.take_along_axis(hi, reference, -1)) + (lo - np.take_along_axis(lo, reference, -1))) / t
        q = np.exp(log_q)
        spread = np.sum(q * np.expm1(d), axis=-1, keepdims=True)  # Σ q (e^d − 1); inf when some d > 709
        delta = np.log1p(spread)
    direct = log_p - log_q
    near = np.isfinite(delta) & (np.abs(delta) <= 1.0)
    with np.errstate(invalid="ignore"):
        return np.where(near, d - np.where(near, delta, 0.0), direct)


def log_ratio_of_probabilities(x: FloatArray, y: FloatArray, log_p: FloatArray, log_q: FloatArray) -> FloatArray:
    """`log p − log q` for probability rows `p = x / Σx`, `q = y / Σy` (x, y as given, rows summing to ~1).

    Where `x_i` and `y_i` are within a factor of 2, `log(x_i / y_i) − log(Σx / Σy)` by `log1p` of exact
    differences (`x_i − y_i` is exact there, and `Σx − Σy` is summed as `Σ (x − y)`).
    """
    x, y = np.broadcast_arrays(x, y)
    close = (y > 0) & (np.abs(x - y) <= 0.5 * y)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.log1p(np.where(close, (x - y) / np.where(close, y, 1.0), 0.0))
        sums = np.log1p(np.sum(x - y, axis=-1, keepdims=True) / np.sum(y, axis=-1, keepdims=True))
        return np.where(close, ratio - sums, log_p - log_q)


def _bregman_terms(x: FloatArray, m: FloatArray, v: FloatArray) -> FloatArray:
    """Terms `x v − x + m` (≥ 0) of `KL(x‖m)` with `v = log(x / m)`, by the series where |v| is small."""
    small = np.abs(v) < _SERIES_BOUND
    with np.errstate(invalid="ignore"):  # x = 0 with v = -inf: the term is m
        direct = np.where(x > 0, x * v, 0.0) - x + m
    return np.where(small, m * phi(np.where(small, v, 0.0)), direct)


def kl(p: FloatArray, q: FloatArray, u: FloatArray) -> FloatArray:
    """`KL(p‖q) = Σ q φ(u)` over the last axis, `u = log p − log q`; +inf where q = 0 < p."""
    terms = _bregman_terms(p, q, u)
    result: FloatArray = np.maximum(terms, 0.0).sum(axis=-1)
    return result


def js(p: FloatArray, q: FloatArray, u: FloatArray) -> FloatArray:
    """Jensen–Shannon divergence `½ KL(p‖m) + ½ KL(q‖m)` from non-negative terms."""
    m = 0.5 * (p + q)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        # log(p/m) = log 2 − log(1 + e^−u) and log(q/m) = log 2 − log(1 + e^u), by log1p(expm1) near u = 0.
        small = np.abs(u) < 1.0
        a = np.where(small, -np.log1p(0.5 * np.expm1(-u)), np.log(2.0) - np.logaddexp(0.0, -u))
        b = np.where(small, -np.log1p(0.5 * np.expm1(u)), np.log(2.0) - np.logaddexp(0.0, u))
    terms = _bregman_terms(p, m, a) + _bregman_terms(q, m, b)
    result: FloatArray = 0.5 * np.maximum(terms, 0.0).sum(axis=-1)
    return result


def tri(p: FloatArray, q: FloatArray, u: FloatArray) -> FloatArray:
    """Triangular divergence `Σ (p − q)² / (p + q)`; `q expm1(u)² / (2 + expm1(u))` where |u| is small."""
    small = np.abs(u) < 1.0
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        e = np.expm1(np.where(small, u, 0.0))
        near = q * e * (e / (2.0 + e))
        total, difference = p + q, p - q
        # d · (d / total), not d² / total: d² underflows for terms of 1e-160 that the sum still needs.
        far = np.where(total > 0, difference * (difference / np.where(total > 0, total, 1.0)), 0.0)
    result: FloatArray = np.where(small, near, far).sum(axis=-1)
    return result
