"""Divergences between classifier outputs (CE, KL, JS, triangular, L2), row-wise or pairwise, in pure numpy.

Conventions (DESIGN.md, "Math conventions"): ``p = softmax(a / T)`` and ``q = softmax(b / T)``, or ``p = a`` and
``q = b`` for probability input (T must be 1); natural log by default, ``base="2"`` gives bits for the log-based
measures (ce, kl, kl_reverse, js); ``tri`` (no log, in [0, 2]) and ``euclidean`` (``‖a − b‖₂`` on the inputs as
given) ignore the base. Everything is float64. An infinite divergence (a zero in probability input) comes back as
``+inf``, never NaN; logits input always gives finite values.

Row-wise mode compares ``a[i]`` with ``b[i]``; a single row on either side (shape ``(C,)`` or ``(1, C)``) is
broadcast against every row of the other side, and arrays of rows ``(..., C)`` broadcast over their leading axes as
numpy arrays do (queries ``(q, 1, C)`` against their candidates ``(q, m, C)`` give ``(q, m)``, each query's side
computed once). Pairwise mode compares every row of ``a`` with every row of ``b``.
"""

import dataclasses
import functools
import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from . import precise
from .deadline import check_deadline, current_deadline
from .errors import DimensionMismatchError, InvalidInputError, UnknownMetricError
from .validation import check_temperature

MEASURES: tuple[str, ...] = ("ce", "kl", "kl_reverse", "js", "tri", "euclidean")
#: Also available when asked for by name (not in the default set): the vector measures of the search metrics.
EXTRA_MEASURES: tuple[str, ...] = ("l2", "l2_centered", "cosine")
_LOG_MEASURES = frozenset({"ce", "kl", "kl_reverse", "js"})  # the ones `base` applies to
Base = Literal["e", "2"]
InputKind = Literal["logits", "probabilities"]
FloatArray = npt.NDArray[np.float64]
_Kernel = Callable[[FloatArray, FloatArray], FloatArray]
_Index = npt.NDArray[np.intp] | tuple[npt.NDArray[np.intp], ...]  # rows of one side: by position, or per leading axis
_PreciseMeasure = Callable[[FloatArray, FloatArray, FloatArray], FloatArray]  # (p, q, log p − log q) -> value

_LN2 = math.log(2.0)
_TINY = float(np.finfo(np.float64).tiny)  # log(max(x, _TINY)) is finite, and x * that is 0 for x = 0
_LOG_FLOOR = -1e300  # log-probabilities below this are floored, so logits never give -inf (exp() is 0 anyway)
_PROBABILITY_TOLERANCE = 1e-4
_BLOCK_ELEMENTS = 1 << 18  # 2 MiB per float64 temporary in blocked pairwise kernels: bounded and cache-friendly
# Threads of the blocked pairwise kernels (numpy releases the GIL inside each block's ufuncs); set_num_threads.
_num_threads = os.cpu_count() or 1
_REFINE_COSINE = 1e-3  # Gram-form cosine distances below this (absolute) are recomputed from differences
_REFINE_RELATIVE = 1e-6  # Gram-form squared distances below this share of ‖a‖² + ‖b‖² are recomputed exactly


def as_matrix(x: npt.ArrayLike, name: str) -> FloatArray:
    """Convert a vector ``(C,)`` or a batch ``(n, C)`` of finite numbers to a float64 ``(n, C)`` array.

    Args:
        x: nested lists or an array of real numbers.
        name: the argument's name, used in error messages.

    Returns:
        ``(n, C)`` float64 array (``n = 1`` for a vector); not a copy when ``x`` already is one.

    Raises:
        InvalidInputError: ragged, non-numeric, scalar, more than 2-D, empty, or holding NaN/inf (the message names
            the row and column of the first bad value).
    """
    return _as_rows(x, name, max_ndim=2)


def _as_rows(x: npt.ArrayLike, name: str, max_ndim: int | None) -> FloatArray:
    """`as_matrix` for arrays of rows ``(..., C)`` of at most `max_ndim` (None: any) dimensions; a vector
    ``(C,)`` becomes ``(1, C)``."""
    try:
        array = np.asarray(x)
    except ValueError as exc:  # numpy refuses ragged nested sequences
        raise InvalidInputError(f"{name} must be a rectangular (n, C) array, not ragged: {exc}") from None
    if array.dtype.kind not in "iuf":
        raise InvalidInputError(f"{name} must hold real numbers, got dtype {array.dtype}")
    if array.ndim == 0 or (max_ndim is not None and array.ndim > max_ndim):
        shapes = "(C,) or (n, C)" if max_ndim == 2 else "(C,), (n, C) or (..., n, C)"
        raise InvalidInputError(f"{name} must have shape {shapes}, got shape {array.shape}")
    if array.size == 0:
        raise InvalidInputError(f"{name} must not be empty, got shape {array.shape}")
    with np.errstate(over="ignore"):  # e.g. longdouble beyond float64 range becomes inf, reported just below
        matrix = np.asarray(array.reshape(1, -1) if array.ndim == 1 else array, dtype=np.float64)
    bad = ~np.isfinite(matrix)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        where = f"row {first[0]}, column {first[1]}" if len(first) == 2 else f"index {first}"
        raise InvalidInputError(f"{name} must be finite, got {matrix[first]} at {where}")
    return matrix


def log_softmax(logits: npt.NDArray[np.floating], temperature: float = 1.0) -> FloatArray:
    """Log-probabilities of ``softmax(logits / T)`` along the last axis, via a max-shifted logsumexp.

    Args:
        logits: ``(n, C)`` (or any shape, classes last) finite values.
        temperature: T, finite and > 0.

    Returns:
        float64 array of the same shape; entries are floored at -1e300 so the result is always finite.
    """
    t = check_temperature(temperature)
    z = np.asarray(logits, dtype=np.float64)
    with np.errstate(over="ignore"):  # only for |z| ~ 1e308 or tiny T: overflows to -inf, then floored
        shifted = (z - z.max(axis=-1, keepdims=True)) / t
    np.maximum(shifted, _LOG_FLOOR, out=shifted)
    # log Σ e^s = log1p(Σ_{i ≠ argmax} e^{s_i}), as e^{s_max} = 1: the sum of the others keeps every digit even
    # when it is far below the float64 epsilon (log(1 + 1e-20) would be 0, and log q_max with it).
    others = np.exp(shifted)
    np.put_along_axis(others, np.argmax(shifted, axis=-1)[..., None], 0.0, axis=-1)
    result: FloatArray = shifted - np.log1p(np.sum(others, axis=-1, keepdims=True))
    return result


def to_log_probabilities(
    x: npt.ArrayLike, *, input: InputKind, temperature: float, name: str = "probabilities"
) -> FloatArray:
    """Log-probabilities of ``(n, C)`` or ``(C,)`` logits or probabilities (checked with `as_matrix` first).

    Logits go through `log_softmax` at temperature T. Probabilities must have T == 1, be >= 0 and have rows that
    sum to 1 within 1e-4; each row is renormalised to sum to exactly 1, and ``log(0) = -inf``.

    Args:
        x: ``(n, C)`` or ``(C,)`` finite logits or probabilities.
        input: ``"logits"`` or ``"probabilities"``.
        temperature: T, finite and > 0 (exactly 1 for probabilities).
        name: the argument's name, used in error messages.

    Returns:
        ``(n, C)`` float64 log-probabilities.

    Raises:
        InvalidInputError: unknown input kind, bad temperature, bad array (see `as_matrix`), or invalid probability
            rows (the first is named).
    """
    return _log_probabilities(as_matrix(x, name), input, check_temperature(temperature), name)


def _log_probabilities(x: FloatArray, input: InputKind, t: float, name: str) -> FloatArray:
    """`to_log_probabilities` of rows `(..., C)` already checked by `_as_rows`."""
    if input == "logits":
        return log_softmax(x, t)
    if input != "probabilities":
        raise InvalidInputError(f"input must be 'logits' or 'probabilities', got {input!r}")
    if t != 1.0:
        raise InvalidInputError(f"temperature must be 1 with probability input (it only scales logits), got {t}")
    rows = x.reshape(-1, x.shape[-1])  # rows are numbered in C order in the messages
    negative = np.flatnonzero((rows < 0).any(axis=1))
    if negative.size:
        row = int(negative[0])
        raise InvalidInputError(f"{name} must be >= 0, but row {row} has {rows[row].min()}")
    sums = x.sum(axis=-1, keepdims=True)
    off = np.flatnonzero(np.abs(sums - 1.0) > _PROBABILITY_TOLERANCE)
    if off.size:
        row = int(off[0])
        raise InvalidInputError(f"{name} rows must sum to 1 (within 1e-4), but row {row} sums to {sums.flat[row]}")
    # log Σ x = log1p((x_max − 1) + Σ_{others} x): x_max − 1 is exact for x_max in [0.5, 2], so a row such as
    # (1e-300, 1.0) keeps its tiny share of the normalisation (log(1 + 1e-300) would be 0, and H(p) with it).
    top = np.argmax(x, axis=-1)[..., None]
    others = x.copy()
    np.put_along_axis(others, top, 0.0, axis=-1)
    excess = (np.take_along_axis(x, top, axis=-1) - 1.0) + others.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore"):  # log(0) = -inf is the intended value
        result: FloatArray = np.log(x) - np.log1p(excess)
    return result


@dataclass(frozen=True)
class _Operands:
    """Both sides of a comparison: inputs as given ``(n, C)``/``(m, C)``, their log-probabilities, and their
    probabilities computed when a measure first asks (ce and kl never need q's: one exponential pass less).
    `best` (row-wise only): the values that must be exact are the `best` smallest along the last leading axis."""

    a: FloatArray
    b: FloatArray
    log_p: FloatArray
    log_q: FloatArray
    pairwise: bool
    input: InputKind = "logits"
    temperature: float = 1.0
    best: int | None = None

    @functools.cached_property
    def p(self) -> FloatArray:
        return np.exp(self.log_p)

    @functools.cached_property
    def q(self) -> FloatArray:
        return np.exp(self.log_q)

    @functools.cached_property
    def neg_entropy(self) -> FloatArray:
        """``Σ p log p`` (<= 0) of each row of p, shared by ce and kl."""
        return _xlogy_sum(self.p, self.log_p)

    def log_ratio(self, i: _Index, j: _Index) -> FloatArray:
        """`log p − log q` without cancellation (`precise`) for the pairs of rows `p[i]`, `q[j]` (each index an
        array, or a tuple of them over the leading axes)."""
        if self.input == "logits":
            return precise.log_ratio_of_logits(self.a[i], self.b[j], self.log_p[i], self.log_q[j], self.temperature)
        return precise.log_ratio_of_probabilities(self.a[i], self.b[j], self.log_p[i], self.log_q[j])

    def refine_rows(self, values: FloatArray, rows: npt.NDArray[np.bool_], measure: _PreciseMeasure) -> FloatArray:
        """Recompute the marked entries of fast row-wise values with a `precise` measure (a side broadcast along
        an axis, as a single row is, is compared with every row of the other along it)."""
        picked = np.nonzero(rows)
        if picked[0].size == 0:
            return values
        i, j = _broadcast_index(picked, self.p.shape[:-1]), _broadcast_index(picked, self.q.shape[:-1])
        values[picked] = measure(self.p[i], self.q[j], self.log_ratio(i, j))
        return values

    def refine(self, values: FloatArray, pairs: npt.NDArray[np.bool_], measure: _PreciseMeasure) -> FloatArray:
        """Recompute the marked pairs of a fast pairwise matrix with a `precise` measure, in bounded chunks."""
        if not pairs.any():
            return values
        rows, cols = np.nonzero(pairs)
        chunk = max(1, _BLOCK_ELEMENTS // self.p.shape[1])
        for start in range(0, rows.size, chunk):
            i, j = rows[start : start + chunk], cols[start : start + chunk]
            values[i, j] = measure(self.p[i], self.q[j], self.log_ratio(i, j))
        return values


def _broadcast_index(
    picked: tuple[npt.NDArray[np.intp], ...], shape: tuple[int, ...]
) -> tuple[npt.NDArray[np.intp], ...]:
    """Index into a side of leading shape `shape` for the `picked` entries of the broadcast result."""
    return tuple(index if size > 1 else np.zeros_like(index) for index, size in zip(picked, shape, strict=True))


def _xlogy_sum(x: FloatArray, log_y: FloatArray) -> FloatArray:
    """``Σ x · log y`` over the last axis with ``0 · log y = 0`` even where ``log y`` is -inf or NaN."""
    result: FloatArray = np.sum(x * np.where(x > 0, log_y, 0.0), axis=-1)
    return result


def _xlogx_sum(x: FloatArray) -> FloatArray:
    """``Σ x log x`` over the last axis (``0 log 0 = 0``); modifies nothing, works on broadcast blocks."""
    log_x = np.maximum(x, _TINY)
    np.log(log_x, out=log_x)
    log_x *= x
    result: FloatArray = log_x.sum(axis=-1)
    return result


def _cross_matrix(p: FloatArray, log_q: FloatArray) -> FloatArray:
    """``Σ_k p[i, k] log q[j, k]`` for every pair via one matrix product: ``(n, C), (m, C) -> (n, m)``.

    Zeros in ``q`` (``log q = -inf``) are masked out of the product so that ``0 · -inf`` cannot make NaN, and the
    pairs where they meet a positive ``p`` are set to -inf by a second (indicator) product.
    """
    zero_q = np.isneginf(log_q)
    if not zero_q.any():
        plain: FloatArray = p @ log_q.T
        return plain
    cross: FloatArray = p @ np.where(zero_q, 0.0, log_q).T
    cross[(p > 0).astype(np.float64) @ zero_q.T.astype(np.float64) > 0] = -np.inf
    return cross


def set_num_threads(num_threads: int) -> None:
    """Set how many threads compute the blocks of the JS and triangular matrices (default: the CPU count).

    Raises:
        InvalidInputError: ``num_threads < 1``.
    """
    global _num_threads
    if num_threads < 1:
        raise InvalidInputError(f"num_threads must be >= 1; got {num_threads}")
    _num_threads = num_threads


def _pairwise_reduce(kernel: _Kernel, x: FloatArray, y: FloatArray) -> FloatArray:
    """Apply a block kernel to every pair of rows: ``(n, C), (m, C) -> (n, m)`` float64.

    The kernel maps ``(r, 1, C)`` and ``(1, c, C)`` blocks to ``(r, c)``. Blocks hold at most ~_BLOCK_ELEMENTS
    pair-elements, so memory stays bounded; the loops run over blocks, not rows. Blocks are shared out among
    ``set_num_threads`` threads, each writing its own blocks of the result, so the values do not depend on the
    thread count.
    """
    (n, num_classes), m = x.shape, y.shape[0]
    cols = max(1, min(m, _BLOCK_ELEMENTS // num_classes))
    rows = max(1, _BLOCK_ELEMENTS // (cols * num_classes))
    out = np.empty((n, m), dtype=np.float64)
    blocks = [(i, j) for j in range(0, m, cols) for i in range(0, n, rows)]
    workers = min(_num_threads, len(blocks))
    deadline = current_deadline()  # worker threads do not see the caller's context variables

    def fill(worker: int) -> None:
        for i, j in blocks[worker::workers]:
            check_deadline(deadline)
            out[i : i + rows, j : j + cols] = kernel(x[i : i + rows, None], y[None, j : j + cols])

    if workers <= 1:
        fill(0)
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="divergence") as pool:
            list(pool.map(fill, range(workers)))  # list(): re-raises a worker's exception here
    return out


def _mixture_xlogx_sum(p: FloatArray, q: FloatArray) -> FloatArray:
    """``Σ m log m`` with ``m = (p + q) / 2`` over the last axis (broadcasting)."""
    m = p + q
    m *= 0.5
    return _xlogx_sum(m)


def _triangular_sum(p: FloatArray, q: FloatArray) -> FloatArray:
    """``Σ (p − q)² / (p + q)`` over the last axis (broadcasting); terms with ``p + q = 0`` are 0."""
    total = p + q
    np.maximum(total, _TINY, out=total)
    difference = p - q
    difference *= difference
    difference /= total
    result: FloatArray = difference.sum(axis=-1)
    return result


def _ce(o: _Operands) -> FloatArray:
    # ce = H(p) + KL(p‖q): both sums of non-negative terms, and ce(a, b) >= ce(a, a) = H(p) holds in float64 too.
    entropy = np.maximum(-o.neg_entropy, 0.0)
    shift = entropy[:, None] if o.pairwise else entropy
    result: FloatArray = shift + _kl(o, shift)
    return result


# Values come from fast formulas (matrix products or sums, one log per element) whose absolute error is ~1e-16
# times the size of their terms; the pairs or rows whose value is not far above that error are recomputed with
# the `precise` terms.
_REFINE_KL = 1e-3  # relative to Σ p |log p| + Σ p |log q|
# A bound on the fast KL's absolute error relative to Σ p |log p| + Σ p |log q| + log C: each log-probability is
# off by a few ulps of |log q| + log C, each sum by log2(C) ulps of its terms (~1e-14 at C = 1e5); measured at
# most ~2e-16 (tests/indexes/test_divergences_ranking.py).
_FAST_KL_ERROR = 1e-8
_REFINE_JS_TRI = 1e-4  # absolute: the fast JS and tri are relatively accurate to ~1e-14 above it


def _kl(o: _Operands, shift: FloatArray | float = 0.0) -> FloatArray:
    """KL(p‖q); `shift` is what the caller adds to it (ce: the entropy), for ranking with `best`."""
    if o.pairwise:
        neg_entropy, cross = o.neg_entropy[:, None], _cross_matrix(o.p, o.log_q)  # both <= 0
    else:
        neg_entropy, cross = np.broadcast_arrays(o.neg_entropy, _xlogy_sum(o.p, o.log_q))
    fast = np.maximum(neg_entropy - cross, 0.0)
    # fast < r (|Σ p log p| + |Σ p log q|)  <=>  cross > neg_entropy (1 + r) / (1 − r): one pass over (n, m).
    coarse = cross > neg_entropy * ((1 + _REFINE_KL) / (1 - _REFINE_KL))
    if o.pairwise:
        return o.refine(fast, coarse, precise.kl)
    if o.best is not None and coarse.any():  # a value that cannot be among the best keeps its fast form
        error = _FAST_KL_ERROR * (np.log(o.log_p.shape[-1]) - neg_entropy - cross)
        coarse &= _could_be_best(fast + shift, error, o.best)
    return o.refine_rows(fast, coarse, precise.kl)


def _could_be_best(values: FloatArray, error: FloatArray, best: int) -> npt.NDArray[np.bool_]:
    """`(..., m)` mask of the values that may be among the `best` smallest of their row, each value known to within
    `± error` (broadcast like `values`): those whose lower end is not above the `best`-th smallest upper end.

    The rest are larger than the `best` smallest true values, and, kept as they are, stay behind them.
    """
    if best >= values.shape[-1]:
        return np.ones(values.shape, dtype=bool)
    with np.errstate(invalid="ignore"):  # an infinite value with an infinite error: NaN, not among the best
        upper = np.partition(values + error, best - 1, axis=-1)[..., best - 1 : best]
        result: npt.NDArray[np.bool_] = values - error <= upper
    return result


def _kl_reverse(o: _Operands) -> FloatArray:
    swapped = dataclasses.replace(o, a=o.b, b=o.a, log_p=o.log_q, log_q=o.log_p)
    result = _kl(swapped)
    return result.T if o.pairwise else result


def _js(o: _Operands) -> FloatArray:
    # JS = H(m) − (H(p) + H(q)) / 2: one log per element, absolute error ~1e-16·log C, no NaN for zeros.
    neg_h_p, neg_h_q = _xlogx_sum(o.p), _xlogx_sum(o.q)
    if not o.pairwise:
        fast = np.array(0.5 * (neg_h_p + neg_h_q) - _mixture_xlogx_sum(o.p, o.q), ndmin=1)
        js = np.clip(o.refine_rows(fast, fast < _REFINE_JS_TRI, precise.js), 0.0, _LN2)
    else:
        fast = 0.5 * (neg_h_p[:, None] + neg_h_q[None, :]) - _pairwise_reduce(_mixture_xlogx_sum, o.p, o.q)
        js = np.clip(o.refine(fast, fast < _REFINE_JS_TRI, precise.js), 0.0, _LN2)
    # JS ≤ (ln 2 / 2)·tri is tight wherever p and q differ only on disjoint supports (JS = ε ln 2, tri = 2ε), at
    # every magnitude, and the two sides round independently: clip to the very tri `_tri` returns, so the identity
    # holds in float64 without exception (it moves JS by at most tri's rounding, ~1e-14 relative).
    bound: FloatArray = np.minimum(js, _LN2 / 2 * _tri(o))
    return bound


def _tri(o: _Operands) -> FloatArray:
    if not o.pairwise:
        fast = np.array(_triangular_sum(o.p, o.q), ndmin=1)
        return np.clip(o.refine_rows(fast, fast < _REFINE_JS_TRI, precise.tri), 0.0, 2.0)
    fast = _pairwise_reduce(_triangular_sum, o.p, o.q)
    return np.clip(o.refine(fast, fast < _REFINE_JS_TRI, precise.tri), 0.0, 2.0)


def _euclidean(o: _Operands) -> FloatArray:
    # A power-of-two scale is exact and keeps squares finite for any finite input.
    _, exponent = math.frexp(max(float(np.abs(o.a).max()), float(np.abs(o.b).max())))
    scale = math.ldexp(1.0, exponent - 1)
    a, b = o.a / scale, o.b / scale
    if not o.pairwise:
        rows: FloatArray = np.linalg.norm(a - b, axis=-1) * scale
        return rows
    shift = b.mean(axis=0)  # L2 ignores a common shift; centring shrinks the cancellation in the Gram form
    a, b = a - shift, b - shift
    norms_a, norms_b = np.einsum("ij,ij->i", a, a), np.einsum("ij,ij->i", b, b)
    norms = norms_a[:, None] + norms_b[None, :]
    squared = norms - 2.0 * (a @ b.T)
    # Near pairs lose their digits to cancellation; recompute them as exact differences, chunk by chunk.
    near_rows, near_cols = np.nonzero(squared <= _REFINE_RELATIVE * norms)
    chunk = max(1, _BLOCK_ELEMENTS // a.shape[1])
    for start in range(0, near_rows.size, chunk):
        i, j = near_rows[start : start + chunk], near_cols[start : start + chunk]
        difference = a[i] - b[j]
        squared[i, j] = np.einsum("ij,ij->i", difference, difference)
    result: FloatArray = np.sqrt(np.maximum(squared, 0.0)) * scale
    return result


def _l2_centered(o: _Operands) -> FloatArray:
    # Softmax ignores a constant shift of the logits, L2 does not: compare the rows after removing their means.
    centred = dataclasses.replace(o, a=o.a - o.a.mean(axis=-1, keepdims=True), b=o.b - o.b.mean(axis=-1, keepdims=True))
    return _euclidean(centred)


def _unit_rows(x: FloatArray) -> FloatArray:
    """Rows scaled to unit L2 norm; all-zero rows stay zero (their cosine with anything is taken as 0)."""
    _, exponent = math.frexp(float(np.abs(x).max()))
    scaled = x / math.ldexp(1.0, exponent - 1)  # exact, keeps the squares finite
    norms = np.linalg.norm(scaled, axis=-1, keepdims=True)
    result: FloatArray = np.divide(scaled, norms, out=np.zeros_like(scaled), where=norms > 0)
    return result


def _cosine(o: _Operands) -> FloatArray:
    """`1 − cos` as `½‖â − b̂‖²` of the unit rows wherever `1 − â · b̂` would cancel.

    `1 − â · b̂` loses about `C ε` absolutely (8e-5 relative at 1e-11, everything below 1e-13); the difference
    of unit rows keeps the digits of close directions: `½‖â − b̂‖²` is accurate to a few ε relative to `‖â − b̂‖`,
    about 1e-8 relative at 1e-14. Pairwise, the Gram form is kept where it is far above its rounding
    (`_REFINE_COSINE`) and the rest are recomputed from differences in bounded chunks.
    """
    a, b = _unit_rows(o.a), _unit_rows(o.b)
    if not o.pairwise:
        difference = np.subtract(*np.broadcast_arrays(a, b))
        rows: FloatArray = np.clip(0.5 * np.einsum("...c,...c->...", difference, difference), 0.0, 2.0)
        return rows
    result: FloatArray = 1.0 - a @ b.T
    near_rows, near_cols = np.nonzero(result < _REFINE_COSINE)
    chunk = max(1, _BLOCK_ELEMENTS // a.shape[1])
    for start in range(0, near_rows.size, chunk):
        i, j = near_rows[start : start + chunk], near_cols[start : start + chunk]
        difference = a[i] - b[j]
        result[i, j] = 0.5 * np.einsum("ij,ij->i", difference, difference)
    clipped: FloatArray = np.clip(result, 0.0, 2.0)
    return clipped


_MEASURE_FUNCTIONS: dict[str, Callable[[_Operands], FloatArray]] = {
    "ce": _ce,
    "kl": _kl,
    "kl_reverse": _kl_reverse,
    "js": _js,
    "tri": _tri,
    "euclidean": _euclidean,
    "l2": _euclidean,  # the search metric's name for it
    "l2_centered": _l2_centered,
    "cosine": _cosine,
}


def _resolve_measures(measures: Sequence[str] | None) -> list[str]:
    names = list(MEASURES) if measures is None else [measures] if isinstance(measures, str) else list(measures)
    if not names:
        raise InvalidInputError(f"measures must name at least one of {', '.join(MEASURES)}")
    for name in names:
        if name not in _MEASURE_FUNCTIONS:
            valid = ", ".join(MEASURES + EXTRA_MEASURES)
            raise UnknownMetricError(f"unknown divergence measure {name!r}; valid measures: {valid}")
    return list(dict.fromkeys(names))


def compute_divergences(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    *,
    measures: Sequence[str] | None = None,
    input: InputKind = "logits",
    temperature: float = 1.0,
    base: Base = "e",
    pairwise: bool = False,
    best: int | None = None,
) -> dict[str, FloatArray]:
    """Compute several measures between ``a`` and ``b``, converting to log-probabilities once.

    Args:
        a: reference side, ``(n, C)`` or ``(C,)`` logits or probabilities (p); row-wise, also ``(..., n, C)``.
        b: other side, ``(m, C)`` or ``(C,)`` (q); row-wise, also ``(..., m, C)``.
        measures: names from `MEASURES` (a single name may be a plain string); default all, duplicates ignored.
        input: ``"logits"`` (softmax at temperature T) or ``"probabilities"`` (T must be 1).
        temperature: T, finite and > 0; ignored by ``euclidean``.
        base: ``"e"`` (nats) or ``"2"`` (bits) for ce, kl, kl_reverse and js; ignored by ``tri`` and ``euclidean``.
        pairwise: False for row-wise values, True for every pair of rows.
        best: row-wise, for a ranking: only the ``best`` smallest values along the last leading axis need every
            digit; ce, kl and kl_reverse then take the slower cancellation-free sums only for the values that may
            be among them, and leave the others accurate to ~1e-8 of their terms and larger than them.

    Returns:
        ``{measure: values}`` in the order asked, float64: ``(max(n, m),)`` row-wise (the broadcast of both
        sides' leading shapes for more axes), ``(n, m)`` pairwise.
        Infinite divergences (probability input with zeros) are ``+inf``.

    Raises:
        UnknownMetricError: a measure name not in `MEASURES`.
        DimensionMismatchError: ``a`` and ``b`` have different numbers of classes C.
        InvalidInputError: bad arrays, temperature, base or input kind; row-wise with ``n != m`` and neither 1
            (leading shapes that do not broadcast); pairwise with more than two axes.
    """
    names = _resolve_measures(measures)
    if base not in ("e", "2"):
        raise InvalidInputError(f"base must be 'e' or '2', got {base!r}")
    max_ndim = 2 if pairwise else None
    x, y = _as_rows(a, "a", max_ndim), _as_rows(b, "b", max_ndim)
    if x.shape[-1] != y.shape[-1]:
        raise DimensionMismatchError(
            f"a and b must have the same number of classes, got {x.shape[-1]} and {y.shape[-1]}"
        )
    if not pairwise:
        x, y = _rows_broadcasting(x, y)
    elif best is not None:
        raise InvalidInputError("best applies to row-wise values; pass pairwise=False, or best=None")
    if best is not None and best < 1:
        raise InvalidInputError(f"best must be >= 1, got {best}")
    t = check_temperature(temperature)
    log_p, log_q = _log_probabilities(x, input, t, "a"), _log_probabilities(y, input, t, "b")
    operands = _Operands(x, y, log_p, log_q, bool(pairwise), input, t, best)
    values: dict[str, FloatArray] = {}
    for name in names:
        result = _MEASURE_FUNCTIONS[name](operands)
        values[name] = result / _LN2 if base == "2" and name in _LOG_MEASURES else result
    return values


def _rows_broadcasting(x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Both sides of a row-wise comparison with as many axes, once their leading axes are known to broadcast."""
    try:
        np.broadcast_shapes(x.shape[:-1], y.shape[:-1])
    except ValueError:
        if x.ndim == y.ndim == 2:
            raise InvalidInputError(
                f"row-wise mode needs as many rows in a as in b (or a single row on one side), got {x.shape[0]} and "
                f"{y.shape[0]}; pass pairwise=True to compare every pair"
            ) from None
        raise InvalidInputError(
            f"row-wise mode needs leading shapes of a and b that broadcast, got {x.shape[:-1]} and {y.shape[:-1]}"
        ) from None
    ndim = max(x.ndim, y.ndim)
    return x.reshape((1,) * (ndim - x.ndim) + x.shape), y.reshape((1,) * (ndim - y.ndim) + y.shape)


def compute_divergence(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    *,
    measure: str,
    input: InputKind = "logits",
    temperature: float = 1.0,
    base: Base = "e",
    pairwise: bool = False,
    best: int | None = None,
) -> FloatArray:
    """Compute one measure between ``a`` and ``b``; arguments, shapes and errors as in `compute_divergences`.

    Returns:
        float64 ``(max(n, m),)`` row-wise or ``(n, m)`` pairwise.
    """
    values = compute_divergences(
        a, b, measures=(measure,), input=input, temperature=temperature, base=base, pairwise=pairwise, best=best
    )
    return values[measure]
