"""The vectors each family of structure holds for the items and searches with for the queries."""

import numpy as np

from ..divergences import log_softmax
from ..metrics import EMBEDDINGS
from .options import ENCODE_CHUNK, FamilyKey


def _biases(centred: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """`(n, K)` `b_T(z) = T·logsumexp(z_c / T)` at each grid T, from the centred logits `(n, C)` float64."""
    top = centred.max(axis=1, keepdims=True)
    columns = [
        top[:, 0] + t * np.log(np.exp((centred - top) / t).sum(axis=1)) for t in grid.tolist()
    ]  # T·lse(z/T) = max + T·log Σ exp((z − max)/T)
    return np.stack(columns, axis=1)


def encode_items(family: FamilyKey, z: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """`(n, C)` logits -> `(n, D)` float32 item vectors of a family's structure, computed in row chunks (the
    float64 intermediates stay small)."""
    if family[0] == "l2":
        return np.ascontiguousarray(z, dtype=np.float32)
    first = _encode_rows(family, z[:1], grid)
    out = np.empty((len(z), first.shape[1]), np.float32)
    for start in range(0, len(z), ENCODE_CHUNK):
        out[start : start + ENCODE_CHUNK] = _encode_rows(family, z[start : start + ENCODE_CHUNK], grid)
    return out


def _encode_rows(family: FamilyKey, z: np.ndarray, grid: np.ndarray) -> np.ndarray:
    name, temperature = family
    if name == "ce":
        centred = EMBEDDINGS["l2_centered"].items(z, 1.0)
        encoded = np.hstack([centred, _biases(centred, grid)])
    else:  # the exact search's own candidate vectors: centred rows, unit rows, √q
        encoded = z if name == "l2" else EMBEDDINGS[name].items(z, 1.0 if temperature is None else temperature)
    return np.ascontiguousarray(encoded, dtype=np.float32)


def interpolation(grid: np.ndarray, temperature: float) -> np.ndarray | None:
    """`(K,)` weights that interpolate a grid column at T linearly (two neighbours), or None outside the grid."""
    if not grid[0] <= temperature <= grid[-1]:
        return None
    weights = np.zeros(len(grid))
    right = int(np.searchsorted(grid, temperature))
    if grid[right] == temperature:
        weights[right] = 1.0
    else:
        left = right - 1
        share = (temperature - grid[left]) / (grid[right] - grid[left])
        weights[left], weights[right] = 1.0 - share, share
    return weights


def encode_queries(family: FamilyKey, x: np.ndarray, temperature: float, grid: np.ndarray) -> np.ndarray:
    """`(q, C)` float64 query logits -> `(q, D)` float32 query vectors (for ce, T within the grid)."""
    name, _ = family
    if name != "ce":
        return encode_items((name, temperature if name == "js" else None), x, grid)
    weights = interpolation(grid, temperature)
    assert weights is not None
    p = np.exp(log_softmax(x, temperature))
    return np.ascontiguousarray(np.hstack([p, np.broadcast_to(-weights, (len(x), len(grid)))]), dtype=np.float32)


def row_hashes(vectors: np.ndarray) -> np.ndarray:
    """`(n, C)` float32 -> `(n,)` uint64: a seeded multiply-add hash of each row's bits, to tell which rows changed
    since a build (a changed row keeps its hash with probability about 2^-64); computed in row chunks (no `n × C`
    uint64 temporary)."""
    weights = np.random.default_rng(0x5EED).integers(1, 2**63, vectors.shape[1], dtype=np.uint64) | np.uint64(1)
    hashes = np.empty(len(vectors), np.uint64)
    for start in range(0, len(vectors), ENCODE_CHUNK):
        rows = np.ascontiguousarray(vectors[start : start + ENCODE_CHUNK], dtype=np.float32)
        with np.errstate(over="ignore"):
            mixed = rows.view(np.uint32).astype(np.uint64) * weights  # wraps modulo 2^64
            chunk = mixed.sum(axis=1, dtype=np.uint64)
        hashes[start : start + len(rows)] = chunk ^ (chunk >> np.uint64(31))
    return hashes
