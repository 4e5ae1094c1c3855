"""Saturated divergences ranked by their true order: `js` and `tri` near their maxima, told apart in log space.

At low T most random pairs have ``tri == 2.0`` and ``js == ln 2`` in float64, and a rank correlation over them
would rank rounding noise. Their complements ``2 − tri = 4 Σ pq / (p + q)`` and ``ln 2 − js`` are sums of positive
terms that `indexes.metrics.complement_log` computes in log space, as the search does to break the same ties; the
keys here sort like the true values, saturated or not.
"""

import math

import numpy as np
import numpy.typing as npt

from indexes.metrics import complement_log

FloatArray = npt.NDArray[np.float64]

#: Measures that saturate, and the value they saturate at.
SATURATION: dict[str, float] = {"js": math.log(2.0), "tri": 2.0}
# Below this distance from the maximum the float64 value keeps too few digits of its complement (~1e-13 relative
# at 1e-3), so the complement is computed in log space instead.
_NEAR = 1e-3
_CHUNK_ELEMENTS = 1 << 18


def order_keys(
    measure: str, values: FloatArray, a: npt.NDArray[np.floating], b: npt.NDArray[np.floating], temperature: float
) -> FloatArray:
    """Keys that sort the pairs ``(a[i], b[i])`` as their true `measure` values do, ties in float64 resolved.

    For js and tri the key is ``−log(saturation − value)``: from the value itself where it is at least 1e-3 below
    the maximum, from the log-space complement nearer to it. Other measures' values are their own keys.

    Args:
        measure: a divergence name; only ``js`` and ``tri`` are rewritten.
        values: ``(m,)`` the measure between ``a[i]`` and ``b[i]`` (as `compute_divergence` gives them).
        a: ``(m, C)`` logits (the reference side).
        b: ``(m, C)`` logits.
        temperature: T of the values.

    Returns:
        ``(m,)`` float64 keys, increasing with the true value.
    """
    if measure not in SATURATION:
        return values
    saturation = SATURATION[measure]
    near = values >= saturation - _NEAR
    with np.errstate(divide="ignore"):  # the saturated ones, replaced just below
        keys: FloatArray = -np.log(np.where(near, 1.0, saturation - values))
    picked = np.flatnonzero(near)
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    chunk = max(1, _CHUNK_ELEMENTS // x.shape[1])
    for start in range(0, picked.size, chunk):
        rows = picked[start : start + chunk]
        keys[rows] = -complement_log(measure, x[rows], y[rows][:, None, :], temperature)[:, 0]
    return keys


def tied_share(keys: FloatArray) -> float:
    """Share of the ``(m,)`` keys equal to at least one other key (0 when all differ)."""
    _, counts = np.unique(keys, return_counts=True)
    return float(counts[counts > 1].sum() / keys.size) if keys.size else 0.0
