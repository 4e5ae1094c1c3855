"""The search metrics under evaluation, as ``(q, C), (n, C) -> (q, n)`` distance matrices, and the CE ground truth.

Every metric is computed exactly here, by brute force, with the divergence code of `indexes.divergences`; nothing
goes through a search index, so the ground truth never depends on the thing being evaluated.
"""

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from indexes.divergences import compute_divergence, compute_divergences

from .errors import EvaluationConfigError

FloatArray = npt.NDArray[np.float64]

#: Metrics whose ranking is compared with the CE ranking, in report order.
RANKING_METRICS: tuple[str, ...] = ("l2", "l2_centered", "kl", "js", "tri", "cosine")
#: Metrics on raw logits: their ranking is the same at every temperature.
TEMPERATURE_FREE: frozenset[str] = frozenset({"l2", "l2_centered", "cosine"})


def check_metrics(metrics: Sequence[str]) -> tuple[str, ...]:
    """Return ``metrics`` without duplicates, or raise if one is unknown or none is given.

    Raises:
        EvaluationConfigError: an empty list or a name not in `RANKING_METRICS`.
    """
    if isinstance(metrics, str) or not metrics:
        raise EvaluationConfigError(f"metrics must be a non-empty list of: {', '.join(RANKING_METRICS)}")
    unknown = [m for m in metrics if m not in RANKING_METRICS]
    if unknown:
        raise EvaluationConfigError(f"unknown metric {unknown[0]!r}; choose from {', '.join(RANKING_METRICS)}")
    return tuple(dict.fromkeys(metrics))


def center_rows(logits: npt.NDArray[np.floating]) -> FloatArray:
    """Subtract each row's mean: ``(n, C) -> (n, C)`` float64 (softmax ignores this shift, L2 does not)."""
    x = np.asarray(logits, dtype=np.float64)
    centered: FloatArray = x - x.mean(axis=1, keepdims=True)
    return centered


def cosine_distances(queries: npt.NDArray[np.floating], items: npt.NDArray[np.floating]) -> FloatArray:
    """``1 − cos(x, z)`` for every pair: ``(q, C), (n, C) -> (q, n)`` float64 in [0, 2]; a zero vector has cos 0.

    Args:
        queries: ``(q, C)`` logits.
        items: ``(n, C)`` logits.
    """

    def unit(x: npt.NDArray[np.floating]) -> FloatArray:
        rows = np.asarray(x, dtype=np.float64)
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        scaled: FloatArray = np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0)
        return scaled

    distances: FloatArray = np.clip(1.0 - unit(queries) @ unit(items).T, 0.0, 2.0)
    return distances


def compute_distances(
    metrics: Sequence[str], queries: npt.NDArray[np.floating], items: npt.NDArray[np.floating], temperature: float
) -> dict[str, FloatArray]:
    """Distances from every query to every item under each metric (smaller = closer).

    ``l2`` = ``‖x − z‖₂``, ``l2_centered`` = the same on mean-centred rows, ``cosine`` = ``1 − cos(x, z)`` (these
    three ignore the temperature); ``kl``, ``js``, ``tri`` as in DESIGN.md with query ``x`` as the reference
    and ``softmax(· / T)``.

    Args:
        metrics: names from `RANKING_METRICS`.
        queries: ``(q, C)`` logits.
        items: ``(n, C)`` logits.
        temperature: T > 0, used by kl, js and tri.

    Returns:
        ``{metric: (q, n) float64}`` in the order asked.
    """
    divergence_names = [m for m in metrics if m not in TEMPERATURE_FREE]
    values: dict[str, FloatArray] = {}
    if divergence_names:
        values = compute_divergences(queries, items, measures=divergence_names, temperature=temperature, pairwise=True)
    if "l2" in metrics:
        values["l2"] = compute_divergence(queries, items, measure="euclidean", pairwise=True)
    if "l2_centered" in metrics:
        values["l2_centered"] = compute_divergence(
            center_rows(queries), center_rows(items), measure="euclidean", pairwise=True
        )
    if "cosine" in metrics:
        values["cosine"] = cosine_distances(queries, items)
    return {m: values[m] for m in metrics}


def cross_entropy(queries: npt.NDArray[np.floating], items: npt.NDArray[np.floating], temperature: float) -> FloatArray:
    """The ground truth: ``CE(softmax(x / T), softmax(z / T))`` for every pair, one matrix product.

    Args:
        queries: ``(q, C)`` logits (the reference distributions p).
        items: ``(n, C)`` logits (q).
        temperature: T > 0.

    Returns:
        ``(q, n)`` float64 nats.
    """
    return compute_divergence(queries, items, measure="ce", temperature=temperature, pairwise=True)
