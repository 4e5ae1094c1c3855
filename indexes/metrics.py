"""Search metrics: how each is turned into a FAISS search over transformed vectors, and its exact value.

Every metric is answered exactly in two steps: FAISS finds candidates in a space where its own distance
orders items like the metric (or bounds it), then the candidates' true values are computed in float64
(`exact_distances`) and sorted. With `p = softmax(x / T)` for the query and `q = softmax(z / T)` per item:

- `ce(x, z) = −p · log q`: a maximum inner product of `p` with the stored `log q` (all terms ≤ 0, no
  cancellation); `kl = ce − H(p)` differs by a constant per query, so it ranks the same. At high T every ce is
  close to log C and the float32 error of `p · log q` (relative to log C) exceeds the differences between items;
  there the candidates come from `CE_CENTRED`, whose terms shrink like 1/T (`ce_embedding`).
- `kl_reverse(x, z) = Σ q log q − q · log p`: inner product of `[log p, 1]` with the augmented `[q, −H(q)]`.
- `js`, `tri`: no inner-product form. `s = ‖√p − √q‖² = 2 − 2 √p · √q` (twice the squared Hellinger
  distance) bounds both: `tri ≥ s` and `js ≥ (ln 2 / 2) s` (`js_hellinger_bounds`). Candidates come in order of `√p · √q`; once the bound at
  the last candidate reaches the k-th exact value, no other item can enter the top k. At high T, where
  `2 − 2 √p · √q` cancels in float32, they come in order of `‖v_p − v_q‖ = ‖√p − √q‖` with `v = √q − 1/√C`
  (`SQRT_Q_CENTRED`), entries O(1/T), certified like `l2`.
- `l2_centered`: L2 after subtracting each row's mean; `cosine`: inner product of unit rows.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .divergences import compute_divergence, log_softmax

SEARCH_METRICS: tuple[str, ...] = ("l2", "l2_centered", "ce", "kl", "kl_reverse", "js", "tri", "cosine")
#: Metrics whose values depend on the softmax temperature.
TEMPERATURE_METRICS = frozenset({"ce", "kl", "kl_reverse", "js", "tri"})
#: Metrics whose candidate scores are float32 distances (or inner products of unit rows) of the logits themselves.
GEOMETRIC_METRICS = frozenset({"l2", "l2_centered", "cosine"})
#: Metrics whose exact search has a certificate (`candidate_lower_bound`): all of them.
CERTIFIED_METRICS = TEMPERATURE_METRICS | GEOMETRIC_METRICS
#: The metrics whose float64 ties `order_breaking_ties` orders by a second value; the others keep a stable sort.
TIE_BROKEN_METRICS = frozenset({"js", "tri"})
#: float32 log-probabilities are clipped here: finite, and far below anything a probability rounds to.
_LOG_FLOOR = -1e30
_CHUNK_ROWS = 1 << 15
_FLOAT32_TINY = float(np.finfo(np.float32).tiny)

Transform = Callable[[np.ndarray, float], np.ndarray]


def _flush(x: np.ndarray) -> np.ndarray:
    """`x` with values below float32's normal range set to 0: a subnormal float32 may round a term up, while
    a term set to 0 only raises an inner product of one-signed terms, which keeps the certificate sound."""
    result: np.ndarray = np.where(np.abs(x) < _FLOAT32_TINY, 0.0, x)
    return result


def _log_q(z: np.ndarray, temperature: float) -> np.ndarray:
    return _flush(np.maximum(log_softmax(z, temperature), _LOG_FLOOR))


def _p(x: np.ndarray, temperature: float) -> np.ndarray:
    return _flush(np.exp(log_softmax(x, temperature)))


def _q_negentropy(z: np.ndarray, temperature: float) -> np.ndarray:
    log_q = log_softmax(z, temperature)
    q = np.exp(log_q)
    neg_entropy = np.sum(q * np.maximum(log_q, _LOG_FLOOR), axis=1, keepdims=True)
    return np.hstack([_flush(q), -neg_entropy])  # maximise [log p, 1] · [q, −Σ q log q]


def _log_p_one(x: np.ndarray, temperature: float) -> np.ndarray:
    return np.hstack([_log_q(x, temperature), np.ones((len(x), 1))])


def _sqrt_q(z: np.ndarray, temperature: float) -> np.ndarray:
    sqrt_q: np.ndarray = np.exp(0.5 * log_softmax(z, temperature))
    return sqrt_q


def _centred(z: np.ndarray, temperature: float) -> np.ndarray:
    z64 = z.astype(np.float64)
    centred: np.ndarray = z64 - z64.mean(axis=1, keepdims=True)
    return centred


def _unit(z: np.ndarray, temperature: float) -> np.ndarray:
    z64 = z.astype(np.float64)
    scale = np.abs(z64).max(axis=1, keepdims=True)
    z64 = np.divide(z64, scale, out=np.zeros_like(z64), where=scale > 0)  # avoids overflow in the squares
    norms = np.linalg.norm(z64, axis=1, keepdims=True)
    unit: np.ndarray = np.divide(z64, norms, out=np.zeros_like(z64), where=norms > 0)
    return unit


@dataclass(frozen=True)
class Embedding:
    """Vectors in which FAISS's own distance finds a metric's candidates.

    Attributes:
        key: cache key of the item vectors (metrics that share them share the key).
        kind: `"ip"` (larger inner product = closer) or `"l2"`.
        items: `(n, C)` logits, T -> `(n, D)` item vectors.
        queries: `(q, C)` logits, T -> `(q, D)` query vectors.
        uses_temperature: whether the item vectors depend on T.
    """

    key: str
    kind: Literal["ip", "l2"]
    items: Transform
    queries: Transform
    uses_temperature: bool

    def transform_items(self, z: np.ndarray, temperature: float) -> np.ndarray:
        """`(n, C)` float32 logits -> `(n, D)` float32, C-contiguous, computed in row chunks."""
        first = self.items(z[:1], temperature)
        out = np.empty((len(z), first.shape[1]), dtype=np.float32)
        for start in range(0, len(z), _CHUNK_ROWS):
            out[start : start + _CHUNK_ROWS] = self.items(z[start : start + _CHUNK_ROWS], temperature)
        return out

    def transform_queries(self, x: np.ndarray, temperature: float) -> np.ndarray:
        return np.ascontiguousarray(self.queries(x, temperature), dtype=np.float32)


def excess_logsumexp(u: np.ndarray) -> np.ndarray:
    """`logsumexp(u) − log C` of centred rows `u` `(n, C)`: ≥ 0 (Jensen), and accurate when tiny (high T), as
    `log1p(mean(expm1(u)))` where no entry exceeds 1: `(n,)` float64."""
    top = u.max(axis=1)
    with np.errstate(over="ignore"):
        small = np.log1p(np.mean(np.expm1(np.minimum(u, 1.0)), axis=1))
    large = top + np.log(np.mean(np.exp(u - top[:, None]), axis=1))
    result: np.ndarray = np.where(top <= 1.0, small, large)
    return result


def _ce_centred(z: np.ndarray, temperature: float) -> np.ndarray:
    """`[u, −b]` `(n, C + 1)`: `u` the centred `z / T`, `b = logsumexp(u) − log C`, so that `log q = u − b − log C`."""
    u = _centred(z, temperature) / temperature
    u -= u.mean(axis=1, keepdims=True)  # again: Σ u = 0 to float64 rounding of u itself, whatever the offset of z
    return np.hstack([u, -excess_logsumexp(u)[:, None]])


def _excess_p_one(x: np.ndarray, temperature: float) -> np.ndarray:
    """`[r / C, 1]` `(q, C + 1)` with `r = C p − 1`: since `Σ u = 0` and `Σ p = 1`, `p · u = (r / C) · u` and
    `[r / C, 1] · [u, −b] = p · u − b = log C − ce(p, q)`; at high T every term is O(1/T²), like ce's differences."""
    num_classes = x.shape[1]
    excess = np.expm1(log_softmax(x, temperature) + np.log(num_classes)) / num_classes
    return np.hstack([excess, np.ones((len(x), 1))])


def _sqrt_q_centred(z: np.ndarray, temperature: float) -> np.ndarray:
    """`v = √q − 1/√C = expm1((u − b) / 2) / √C` `(n, C)` (u, b as in `_ce_centred`): `‖v_p − v_q‖ = ‖√p − √q‖`."""
    u = _centred(z, temperature) / temperature
    u -= u.mean(axis=1, keepdims=True)
    result: np.ndarray = np.expm1(0.5 * (u - excess_logsumexp(u)[:, None])) / np.sqrt(z.shape[1])
    return result


_LOG_Q = Embedding("log_q", "ip", _log_q, _p, True)
#: ce and kl candidates at high T: see `ce_embedding`.
CE_CENTRED = Embedding("ce_centred", "ip", _ce_centred, _excess_p_one, True)
#: js and tri candidates at high T: see `sqrt_q_embedding`.
SQRT_Q_CENTRED = Embedding("sqrt_q_centred", "l2", _sqrt_q_centred, _sqrt_q_centred, True)
EMBEDDINGS: dict[str, Embedding] = {
    "l2_centered": Embedding("centred", "l2", _centred, _centred, False),
    "ce": _LOG_Q,
    "kl": _LOG_Q,
    "kl_reverse": Embedding("q_negentropy", "ip", _q_negentropy, _log_p_one, True),
    "js": Embedding("sqrt_q", "ip", _sqrt_q, _sqrt_q, True),
    "tri": Embedding("sqrt_q", "ip", _sqrt_q, _sqrt_q, True),
    "cosine": Embedding("unit", "ip", _unit, _unit, False),
}


def ce_embedding(temperature: float, num_classes: int, centred_max: float) -> Embedding:
    """The candidate space of ce and kl at T, for items whose centred logits are at most `centred_max` in size.

    In `log q` the float32 error of a score is relative to ce itself (about log C at high T), while ce's differences
    between items shrink like 1/T²; in `CE_CENTRED` every term is O(1/T²) (`candidate_lower_bound`), with entries
    within `centred_max / T`: the centred space is chosen where `2 centred_max / T < log C`, that is at high T.
    """
    if num_classes > 1 and 2.0 * centred_max / temperature < np.log(num_classes):
        return CE_CENTRED
    return EMBEDDINGS["ce"]


def sqrt_q_embedding(temperature: float, centred_max: float) -> Embedding:
    """The candidate space of js and tri at T: `√q` (inner products, absolute float32 error ~δ) or, where the
    entries of `SQRT_Q_CENTRED` are small (`centred_max / T < 1/2`, every `|u| < 1/2`), that space, whose float32
    error is relative to the distances themselves (`_geometric_lower_bound`)."""
    return SQRT_Q_CENTRED if centred_max / temperature < 0.5 else EMBEDDINGS["js"]


def _float32_error(num_classes: int) -> float:
    """A bound on the relative error of a float32 inner product of C terms of one sign (BLAS or FAISS),
    with the rounding of both operands to float32: generous, since a certificate must never be wrong."""
    return (2 * num_classes + 8) * float(np.finfo(np.float32).eps)


#: `js ≥ JS_HELLINGER_LOWER · s` and `js ≤ s / 2` with `s = ‖√p − √q‖²` (`js_hellinger_bounds`).
JS_HELLINGER_LOWER = float(np.log(2.0) / 2.0)


def js_hellinger_bounds(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bounds `(ln 2 / 2) s ≤ js ≤ s / 2` on the Jensen–Shannon divergence (nats) from `s = ‖√p − √q‖²`.

    Both are tight: the lower one at disjoint supports (`js = ln 2`, `s = 2`), the upper one as `q → p`.

    Proof. Both sides are sums over classes, so it suffices to bound each term. Write `m = (p + q) / 2 > 0` and
    `t = (p − q) / (p + q) ∈ [−1, 1]`; then `p = m (1 + t)`, `q = m (1 − t)`, and the terms are

    - `js_i = ½ [p log(p/m) + q log(q/m)] = ½ m h(t)`, `h(t) = (1 + t) log(1 + t) + (1 − t) log(1 − t)`;
    - `s_i = (√p − √q)² = p + q − 2√(pq) = 2 m g(t)`, `g(t) = 1 − √(1 − t²)`.

    With `x = t² ∈ [0, 1]`, both have series of non-negative terms that converge on `[0, 1]`:
    `h = Σ_{n≥1} a_n xⁿ`, `a_n = 1 / (n (2n − 1))`, and `g = Σ_{n≥1} c_n xⁿ`, `c_n = C(2n, n) / ((2n − 1) 4ⁿ)`.
    Their ratio `r_n = a_n / c_n = 4ⁿ / (n C(2n, n))` falls strictly: `r_{n+1} / r_n = 2n / (2n + 1) < 1`.

    Upper: `r_1 = 2`, so `a_n ≤ 2 c_n` for every n, `h ≤ 2g`, and `js_i = ½ m h ≤ m g = s_i / 2`.

    Lower: let `b_n = a_n − 2 ln 2 · c_n`. At `x = 1`, `Σ a_n = h(1) = 2 ln 2` and `Σ c_n = g(1) = 1`, so
    `Σ b_n = 0`; as `r_n` falls, `b_n > 0` for `n < N` and `b_n ≤ 0` for `n ≥ N` (some N). For `x ∈ [0, 1]`,
    `xⁿ ≥ x^N` when `n < N` and `xⁿ ≤ x^N` when `n ≥ N`, so `b_n xⁿ ≥ b_n x^N` for every n, and
    `h − 2 ln 2 · g = Σ b_n xⁿ ≥ x^N Σ b_n = 0`: `js_i = ½ m h ≥ m ln 2 · g = (ln 2 / 2) s_i`. ∎

    (The same `g ≤ x` gives `tri_i = (p − q)² / (p + q) = 2 m x ≥ s_i`.) `tests/indexes/test_metrics.py` checks
    both bounds against mpmath on random and adversarial pairs.

    Args:
        s: `(...)` values of `‖√p − √q‖²` in `[0, 2]`.

    Returns:
        The lower and upper bounds on js, each shaped like `s`.
    """
    return JS_HELLINGER_LOWER * s, 0.5 * s


def candidate_lower_bound(
    metric: str,
    scores: np.ndarray,
    queries: np.ndarray,
    temperature: float,
    space: Embedding | None = None,
    column_max: np.ndarray | None = None,
) -> np.ndarray:
    """A lower bound on the true value of every item FAISS did not return, from its last score per query.

    FAISS returns the m largest float32 scores, so an item left out scored at most the m-th. For `ce`, the
    score is `p · log q = −ce` with terms of one sign, so its float32 error is at most δ·ce (terms of p that
    flush to zero in float32 only raise the score): `ce ≥ −s / (1 + δ)`. In the centred space (`CE_CENTRED`,
    `column_max` given: the largest absolute entry of each column over the items) the score is
    `[r / C, 1] · [u, −b] = log C − ce`, terms of both signs whose float32 error, rounding of both operands
    included, is at most `δ Σ_i |y_i| |w_i| ≤ δ |y| · column_max` for the query vector `y`:
    `ce ≥ log C − s − δ |y| · column_max`, less the float64 rounding of `Σ u = 0` and of this arithmetic.
    `kl = ce − H(p)`. For `kl_reverse`
    the score is `q · log p + H(q) = −kl_reverse` with error at most δ (kl_reverse + 2 log C). For `js` and
    `tri`, `s = √p · √q` and the Hellinger bounds `tri ≥ 2 − 2s`, `js ≥ (ln 2 / 2)(2 − 2s)`.

    Args:
        scores: `(q,)` the m-th (last) FAISS score of each query.
        queries: `(q, C)` float64 query logits.

    Returns:
        `(q,)` float64; -inf where no bound holds (a log-probability past the float32 floor).
    """
    num_classes = queries.shape[1]
    if metric in GEOMETRIC_METRICS:
        return _geometric_lower_bound(metric, scores, queries)
    if space is SQRT_Q_CENTRED:  # `‖√p − √q‖`, bounded as an l2 distance: `s ≥ d²`
        s_lower = _geometric_lower_bound("sqrt_q_centred", scores, queries, temperature) ** 2
        js_factor, tri_factor = hellinger_factors(_largest_log_ratio(queries, temperature, column_max))
        bound: np.ndarray = (js_factor if metric == "js" else tri_factor) * s_lower
        return bound
    delta = _float32_error(num_classes)
    s = scores.astype(np.float64) + (num_classes + 1) * 2.0**-149  # and the rounding of subnormal sums
    if metric in ("js", "tri"):
        hellinger: np.ndarray = np.maximum(2.0 - 2.0 * s - 2.0 * delta, 0.0)
        return JS_HELLINGER_LOWER * hellinger if metric == "js" else hellinger
    if metric == "kl_reverse":
        bound = (-s - 2.0 * delta * np.log(num_classes)) / (1.0 + delta)
        # Past the float32 floor of the query's log-probabilities the scores are not the metric any more.
        bound = np.where((log_softmax(queries, temperature) > _LOG_FLOOR).all(axis=1), bound, -np.inf)
    else:
        if space is not CE_CENTRED or column_max is None:
            bound = -s / (1.0 + delta)
        else:
            log_c = np.log(num_classes)
            error = np.abs(CE_CENTRED.queries(queries, temperature)) @ column_max.astype(np.float64)
            float64 = 8 * float(np.finfo(np.float64).eps) * (num_classes * float(column_max[:-1].max()) + log_c)
            bound = log_c - s - delta * error - float64
        if metric == "kl":  # minus H(p), computed as the exact re-rank computes it
            bound = bound - compute_divergence(queries, queries, measure="ce", temperature=temperature)
    result: np.ndarray = np.where(np.isfinite(s), bound, -np.inf)
    return result


def hellinger_factors(delta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Factors `f` with `js ≥ f s` and `tri ≥ f s` (`s = ‖√p − √q‖²`) for pairs whose every class has
    `|log p − log q| ≤ Δ` (`delta`, `(q,)`): `(ln 2 / 2, 1)` in general, up to `(1/2, 2)` as Δ → 0.

    With `t = (p − q) / (p + q)`, `|t| ≤ τ = tanh(Δ / 2)`, and per class (as in `js_hellinger_bounds`)
    `js_i / s_i = h(x) / (4 g(x))` and `tri_i / s_i = x / g(x) = 1 + √(1 − x)`, `x = t²`. Both fall as x grows
    (`h / g` because the ratio of their series' coefficients falls; `1 + √(1 − x)` plainly), so their values at
    `x = τ²` bound every class, hence the sums. Below `x = 1e-4`, `h / (4g) = ½ (1 − x/12 + O(x²)) ≥ ½ (1 − x)`
    stands in for the float64 value; above, the float64 value (`g = x / (1 + √(1 − x))`, `1 − τ` and
    `√(1 − x) = 1 / cosh(Δ/2)` without cancellation; `h` loses at most ~ε/x, 2e-12) less 1e-9 of it.
    """
    half = np.minimum(delta, 80.0) / 2.0
    tau, one_minus = np.tanh(half), 2.0 / (np.exp(2.0 * half) + 1.0)  # τ and 1 − τ, each to full precision
    x = tau * tau
    root = 1.0 / np.cosh(half)  # √(1 − x)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = (2.0 - one_minus) * np.log(2.0 - one_minus) + one_minus * np.log(one_minus)
        ratio = np.where(x < 1e-4, 0.5 * (1.0 - x), h * (1.0 + root) / (4.0 * x) * (1.0 - 1e-9))
    js_factor = np.maximum(np.nan_to_num(ratio, nan=0.0), JS_HELLINGER_LOWER) * (1.0 - 1e-12)
    tri_factor = (1.0 + root) * (1.0 - 1e-12)
    return js_factor, tri_factor


def _largest_log_ratio(queries: np.ndarray, temperature: float, column_max: np.ndarray | None) -> np.ndarray:
    """A bound `(q,)` on `|log p − log q|` over the classes of each query and every item of a `SQRT_Q_CENTRED` space
    whose columns reach `column_max` (`|v| ≤ V`, so `|log q + log C| = 2 |log1p(√C v)| ≤ −2 log1p(−√C V)`); inf
    where none is known."""
    if column_max is None:
        return np.full(len(queries), np.inf)
    num_classes = queries.shape[1]
    largest = float(column_max.max()) * np.sqrt(num_classes) * (1.0 + 4.0 * float(np.finfo(np.float32).eps))
    items = -2.0 * np.log1p(-largest) if largest < 1.0 else np.inf
    query = np.abs(log_softmax(queries, temperature) + np.log(num_classes)).max(axis=1)
    result: np.ndarray = (query + items) * (1.0 + 1e-9) + 1e-12
    return result


def _geometric_lower_bound(
    metric: str, scores: np.ndarray, queries: np.ndarray, temperature: float = 1.0
) -> np.ndarray:
    """`candidate_lower_bound` for `l2`, `l2_centered` (true, not squared, distances) and `cosine` (`1 − cos`), and
    of `‖√p − √q‖` from the scores of `SQRT_Q_CENTRED` (`metric` "sqrt_q_centred"), an l2 space like the others.

    `cosine`: the score is `ŝ = y · w` of the float32 unit rows, within `γ (1 + ε)²` of `y · w` (terms bounded by
    Cauchy–Schwarz, `γ = _float32_error(C)`), and `y`, `w` are within `ε` of the exact unit rows, so an item left
    out (`ŝ ≤ s`, the m-th score) has `cos ≤ s + γ (1 + ε)² + 3ε`.

    `l2`, `l2_centered`: the score `ŝ` is the float32 squared distance `D² = ‖y − w‖²` between the embedded query
    `y` (`(q, D)`, the query rounded to float32, or its centred row) and item `w`, by FAISS's (or the scan's)
    expansion `‖y‖² − 2 y · w + ‖w‖²` or by direct differences (pgvector): within `γ (‖y‖ + ‖w‖)²` either way.
    With `a = ‖y‖` and `‖w‖ ≤ a + D`, an item left out (`ŝ ≥ s`) has `D² + γ (2a + D)² ≥ s`, increasing in D, so
    `D ≥ D₀`, the root of `(1 + γ) D² + 4γa D + 4γa² − s`. The true distance differs from D by at most `η`
    (`‖x − y‖` of the query, computed here) plus `ε ‖w‖` (the item's rounding to float32; 0 for `l2`, whose
    items are stored as float32): `d ≥ D₀ (1 − ε) − η − εa`.

    Near-duplicate clusters at large norms (distances far below `√γ ‖y‖`) get no useful bound, so their searches
    widen and end in the float64 scan of every match: exact, if slower. A bound computed in float64 is lowered by
    1e-12 relative for its own rounding.
    """
    num_classes = queries.shape[1]
    gamma, eps = _float32_error(num_classes), float(np.finfo(np.float32).eps)
    s = scores.astype(np.float64)
    if metric == "cosine":
        cosine_bound: np.ndarray = 1.0 - s - gamma * (1.0 + eps) ** 2 - 3.0 * eps
        return np.where(np.isfinite(s), cosine_bound - 1e-12, -np.inf)
    if metric == "sqrt_q_centred":
        exact = _sqrt_q_centred(queries, temperature)
    else:
        exact = _centred(queries, 1.0) if metric == "l2_centered" else queries.astype(np.float64)
    rounded = exact.astype(np.float32).astype(np.float64)
    a = np.linalg.norm(rounded, axis=1)
    eta = np.linalg.norm(exact - rounded, axis=1)
    s = s + 3.0 * (num_classes + 1) * 2.0**-149  # subnormal float32 terms
    with np.errstate(over="ignore", invalid="ignore"):
        root = np.sqrt(np.maximum(4.0 * gamma**2 * a**2 - (1.0 + gamma) * (4.0 * gamma * a**2 - s), 0.0))
        d0 = np.where(s > 4.0 * gamma * a**2, (root - 2.0 * gamma * a) / (1.0 + gamma), 0.0)
        item_eps = 0.0 if metric == "l2" else eps
        bound = d0 * (1.0 - item_eps) - eta - item_eps * a
    result: np.ndarray = np.where(np.isnan(s), -np.inf, np.maximum(bound, 0.0) * (1.0 - 1e-12))
    return result


def complement_log(metric: str, queries: np.ndarray, candidates: np.ndarray, temperature: float) -> np.ndarray:
    """`log(2 − tri)` or `log(ln 2 − js)` per query and candidate, from log-probabilities: `(q, m)`.

    At low T most pairs have `tri == 2.0` and `js == ln 2` in float64; the complements, sums of positive terms
    computed in log space, still tell them apart (larger complement = closer). `2 − tri = 4 Σ pq / (p + q)`;
    `ln 2 − js = ½ Σ [p softplus(log q − log p) + q softplus(log p − log q)]`.
    """
    log_p = log_softmax(queries, temperature)[:, None, :]
    log_q = log_softmax(candidates, temperature)
    if metric == "tri":
        terms = log_p + log_q - np.logaddexp(log_p, log_q)
        result: np.ndarray = np.log(4.0) + _logsumexp(terms)
        return result
    u = log_q - log_p
    terms = np.logaddexp(log_p + _log_softplus(u), log_q + _log_softplus(-u))
    result = np.log(0.5) + _logsumexp(terms)
    return result


def order_breaking_ties(
    metric: str, values: np.ndarray, query: np.ndarray, candidates: np.ndarray, temperature: float
) -> np.ndarray:
    """Positions that sort `values` `(m,)` ascending, closest first.

    For `js` and `tri`, values that tie in float64 (at low T most saturate at ln 2 and 2) are ordered by their
    complements (`complement_log`, larger = closer), so distinct true values keep their true order; other
    ties keep their order (a stable sort).

    Args:
        query: `(C,)` logits; candidates: `(m, C)` logits, one row per value.
    """
    if metric not in TIE_BROKEN_METRICS:
        return np.argsort(values, kind="stable")
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    tied = counts[inverse] > 1
    secondary = np.zeros(values.size)
    if tied.any():
        secondary[tied] = -complement_log(metric, query[None, :], candidates[tied][None, :, :], temperature)[0]
    order: np.ndarray = np.lexsort((secondary, values))
    return order


def _log_softplus(v: np.ndarray) -> np.ndarray:
    """`log(log(1 + e^v))`, finite for every finite v (≈ v far below 0, ≈ log v far above)."""
    with np.errstate(divide="ignore"):
        result: np.ndarray = np.where(v < -30.0, v, np.log(np.logaddexp(0.0, np.maximum(v, -30.0))))
    return result


def _logsumexp(terms: np.ndarray) -> np.ndarray:
    top = terms.max(axis=-1, keepdims=True)
    result: np.ndarray = (top + np.log(np.exp(terms - top).sum(axis=-1, keepdims=True)))[..., 0]
    return result


def exact_distances(
    metric: str, queries: np.ndarray, candidates: np.ndarray, temperature: float, best: int | None = None
) -> np.ndarray:
    """True metric values in float64 between each query and its candidates.

    With `best`, only each query's `best` smallest values are computed to the last digit (every candidate must
    then be a real one); the others are within ~1e-8 of their terms and stay larger than those (a re-rank's k).

    Args:
        metric: one of `SEARCH_METRICS`.
        queries: `(q, C)` logits.
        candidates: `(q, m, C)` item logits.
        temperature: T > 0 (ignored by `l2`, `l2_centered` and `cosine`).

    Returns:
        `(q, m)` float64, in nats for the divergences, true (not squared) Euclidean for `l2`.
    """
    num_queries, m, _ = candidates.shape
    if m == 0:
        return np.empty((num_queries, 0))
    if metric == "l2":
        diff = np.subtract(candidates, queries[:, None, :], dtype=np.float64)
        l2: np.ndarray = np.sqrt(np.einsum("qkc,qkc->qk", diff, diff))
        return l2
    values: np.ndarray = compute_divergence(
        queries[:, None, :], candidates, measure=metric, temperature=temperature, best=best
    )
    return values


def exact_matrix(metric: str, queries: np.ndarray, items: np.ndarray, temperature: float) -> np.ndarray:
    """True metric values between every query `(q, C)` and every item `(n, C)`: `(q, n)` float64."""
    measure = "euclidean" if metric == "l2" else metric
    values: np.ndarray = compute_divergence(queries, items, measure=measure, temperature=temperature, pairwise=True)
    return values
