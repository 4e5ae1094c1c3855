"""Search metrics: how each is turned into a FAISS search over transformed vectors, and its exact value.

Every metric is answered exactly in two steps: FAISS finds candidates in a space where its own distance
orders items like the metric (or bounds it), then the candidates' true values are computed in float64
(`exact_distances`) and sorted. With `p = softmax(x / T)` for the query and `q = softmax(z / T)` per item:

- `ce(x, z) = −p · log q`: a maximum inner product of `p` with the stored `log q` (all terms ≤ 0, no
  cancellation); `kl = ce − H(p)` differs by a constant per query, so it ranks the same.
- `kl_reverse(x, z) = Σ q log q − q · log p`: inner product of `[log p, 1]` with the augmented `[q, −H(q)]`.
- `js`, `tri`: no inner-product form. `s = ‖√p − √q‖² = 2 − 2 √p · √q` (twice the squared Hellinger
  distance) bounds both: `tri ≥ s` and `js ≥ s / 4`. Candidates come in order of `√p · √q`; once the bound at
  the last candidate reaches the k-th exact value, no other item can enter the top k.
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
#: float32 log-probabilities are clipped here: finite, and far below anything a probability rounds to.
_LOG_FLOOR = -1e30
_CHUNK_ROWS = 1 << 15

Transform = Callable[[np.ndarray, float], np.ndarray]


def _log_q(z: np.ndarray, temperature: float) -> np.ndarray:
    log_q: np.ndarray = np.maximum(log_softmax(z, temperature), _LOG_FLOOR)
    return log_q


def _p(x: np.ndarray, temperature: float) -> np.ndarray:
    p: np.ndarray = np.exp(log_softmax(x, temperature))
    return p


def _q_negentropy(z: np.ndarray, temperature: float) -> np.ndarray:
    log_q = log_softmax(z, temperature)
    q = np.exp(log_q)
    neg_entropy = np.sum(q * np.maximum(log_q, _LOG_FLOOR), axis=1, keepdims=True)
    return np.hstack([q, -neg_entropy])  # maximise [log p, 1] · [q, −Σ q log q]


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


_LOG_Q = Embedding("log_q", "ip", _log_q, _p, True)
EMBEDDINGS: dict[str, Embedding] = {
    "l2_centered": Embedding("centred", "l2", _centred, _centred, False),
    "ce": _LOG_Q,
    "kl": _LOG_Q,
    "kl_reverse": Embedding("q_negentropy", "ip", _q_negentropy, _log_p_one, True),
    "js": Embedding("sqrt_q", "ip", _sqrt_q, _sqrt_q, True),
    "tri": Embedding("sqrt_q", "ip", _sqrt_q, _sqrt_q, True),
    "cosine": Embedding("unit", "ip", _unit, _unit, False),
}


def hellinger_lower_bound(metric: str, inner_products: np.ndarray, num_classes: int) -> np.ndarray:
    """Lower bound of `js` or `tri` from float32 inner products `√p · √q` (FAISS scores), any shape.

    `s = 2 − 2 √p·√q` is decreased by the float32 rounding error of the product before bounding.
    """
    error = 4.0 * num_classes * float(np.finfo(np.float32).eps)
    s = np.maximum(2.0 - 2.0 * inner_products.astype(np.float64) - error, 0.0)
    return s / 4.0 if metric == "js" else s


def exact_distances(metric: str, queries: np.ndarray, candidates: np.ndarray, temperature: float) -> np.ndarray:
    """True metric values in float64 between each query and its candidates.

    Args:
        metric: one of `SEARCH_METRICS`.
        queries: `(q, C)` logits.
        candidates: `(q, m, C)` item logits.
        temperature: T > 0 (ignored by `l2`, `l2_centered` and `cosine`).

    Returns:
        `(q, m)` float64, in nats for the divergences, true (not squared) Euclidean for `l2`.
    """
    num_queries, m, num_classes = candidates.shape
    if metric == "l2":
        diff = candidates.astype(np.float64) - queries[:, None, :]
        l2: np.ndarray = np.sqrt(np.einsum("qkc,qkc->qk", diff, diff))
        return l2
    flat_queries = np.repeat(queries, m, axis=0)
    values = compute_divergence(
        flat_queries, candidates.reshape(-1, num_classes), measure=metric, temperature=temperature
    )
    return values.reshape(num_queries, m)


def exact_matrix(metric: str, queries: np.ndarray, items: np.ndarray, temperature: float) -> np.ndarray:
    """True metric values between every query `(q, C)` and every item `(n, C)`: `(q, n)` float64."""
    measure = "euclidean" if metric == "l2" else metric
    values: np.ndarray = compute_divergence(queries, items, measure=measure, temperature=temperature, pairwise=True)
    return values
