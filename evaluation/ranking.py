"""Retrieval-quality and rank-correlation metrics over distance matrices ``D`` and neighbour ids ``I``.

Plain numpy/scipy functions in the style of faiss contrib's evaluation: a row is one query. ``D`` is a
``(q, n)`` matrix of distances from each query to the same ``n`` candidates (smaller = closer); ``I`` is a
``(q, k)`` matrix of candidate positions, closest first, as `top_k` returns.

Definitions, with ``I_true`` the exact cross-entropy top-k:

- ``overlap@k``: ``|top_k(metric) ∩ top_k(CE)| / k`` (faiss contrib's "intersection measure").
- ``recall@k``: 1 if CE's nearest neighbour (``I_true[:, 0]``) is in the metric's top-k, else 0 (faiss "1-R@k").
- ``nDCG@k``: graded relevance from the CE rank: the CE top-k item at CE rank ``r`` (1-based) has relevance
  ``k − r + 1``, every other item 0; ``DCG = Σ_j rel(I[:, j]) / log2(j + 1)`` over metric ranks ``j = 1..k``,
  divided by the DCG of CE's own order. 1 exactly when the metric returns CE's top-k in CE's order.
- ``label precision@k``: the share of the top-k whose label equals the query's label.
"""

import numpy as np
import numpy.typing as npt
from scipy import stats

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def top_k(distances: npt.NDArray[np.floating], k: int) -> IntArray:
    """Positions of the ``k`` smallest values of each row, closest first.

    Ties inside the top-k keep position order; which of several items tied at the k-th value gets in is up to
    ``np.argpartition`` (deterministic for the same input).

    Args:
        distances: ``(q, n)`` distances, smaller is closer.
        k: neighbours per row, ``1 <= k``; clipped to ``n``.

    Returns:
        ``(q, min(k, n))`` int64 column positions.
    """
    k = min(k, distances.shape[1])
    part = np.argpartition(distances, k - 1, axis=1)[:, :k] if k < distances.shape[1] else None
    candidates = np.sort(part, axis=1) if part is not None else np.broadcast_to(np.arange(k), distances.shape)
    values = np.take_along_axis(distances, candidates, axis=1)
    order = np.argsort(values, axis=1, kind="stable")  # candidates are sorted by position: ties keep that order
    result: IntArray = np.take_along_axis(candidates, order, axis=1).astype(np.int64)
    return result


def rank_rows(values: npt.NDArray[np.floating]) -> FloatArray:
    """Average ranks (1..n, ties share their mean rank) of each row, as ``scipy.stats.rankdata``.

    One unstable argsort per row and a few vectorised passes: about 2x faster than ``rankdata``, which uses a
    stable sort.

    Args:
        values: ``(q, n)``.

    Returns:
        ``(q, n)`` float64 ranks.
    """
    rows, n = values.shape
    order = np.argsort(values, axis=1)
    ordered = np.take_along_axis(values, order, axis=1)
    starts = np.ones((rows, n), dtype=bool)  # True where a run of equal values begins
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    positions = np.broadcast_to(np.arange(n), (rows, n))
    first = np.maximum.accumulate(np.where(starts, positions, 0), axis=1)
    ends = np.ones((rows, n), dtype=bool)
    ends[:, :-1] = starts[:, 1:]
    last = np.minimum.accumulate(np.where(ends, positions, n)[:, ::-1], axis=1)[:, ::-1]
    ranks = np.empty((rows, n), dtype=np.float64)
    np.put_along_axis(ranks, order, (first + last) / 2.0 + 1.0, axis=1)
    return ranks


def pearson_rows(a: npt.NDArray[np.floating], b: npt.NDArray[np.floating]) -> FloatArray:
    """Pearson correlation of ``a[i]`` with ``b[i]`` for every row.

    Args:
        a: ``(q, n)``.
        b: ``(q, n)``.

    Returns:
        ``(q,)`` float64 in [-1, 1]; NaN for a row where either side is constant.
    """
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    x = x - x.mean(axis=1, keepdims=True)
    y = y - y.mean(axis=1, keepdims=True)
    denominator = np.sqrt(np.einsum("ij,ij->i", x, x) * np.einsum("ij,ij->i", y, y))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.einsum("ij,ij->i", x, y) / denominator
    result: FloatArray = np.where(denominator > 0, np.clip(r, -1.0, 1.0), np.nan)
    return result


def spearman_rows(a: npt.NDArray[np.floating], b: npt.NDArray[np.floating]) -> FloatArray:
    """Spearman rank correlation of ``a[i]`` with ``b[i]``: Pearson of the average ranks (as ``scipy.stats.spearmanr``).

    Args:
        a: ``(q, n)``.
        b: ``(q, n)``.

    Returns:
        ``(q,)`` float64; NaN for a constant row.
    """
    return pearson_rows(rank_rows(a), rank_rows(b))


def kendall_rows(a: npt.NDArray[np.floating], b: npt.NDArray[np.floating]) -> FloatArray:
    """Kendall's tau-b of ``a[i]`` with ``b[i]`` for every row (as ``scipy.stats.kendalltau``).

    Each row goes through scipy's O(n log n) algorithm. A vectorised O(n²) sign-matrix form measured 20-40x
    slower at n = 500-1600 on our machines, so the loop over rows is the cheaper one; callers bound n by sampling.

    Args:
        a: ``(q, n)``.
        b: ``(q, n)``.

    Returns:
        ``(q,)`` float64 in [-1, 1]; NaN for a constant row.
    """
    taus = [stats.kendalltau(x, y).statistic for x, y in zip(np.asarray(a), np.asarray(b), strict=True)]
    return np.asarray(taus, dtype=np.float64).reshape(len(taus))


def overlap_at_k(neighbors: IntArray, true_neighbors: IntArray) -> FloatArray:
    """Share of each row's true top-k found in its top-k: ``|I[i] ∩ I_true[i]| / k``.

    Args:
        neighbors: ``(q, k)`` positions returned by the evaluated metric (distinct within a row).
        true_neighbors: ``(q, k)`` reference positions (distinct within a row).

    Returns:
        ``(q,)`` float64 in [0, 1].
    """
    both = np.sort(np.concatenate([neighbors, true_neighbors], axis=1), axis=1)
    shared = np.count_nonzero(both[:, 1:] == both[:, :-1], axis=1)
    result: FloatArray = shared / true_neighbors.shape[1]
    return result


def recall_at_k(neighbors: IntArray, true_neighbors: IntArray) -> FloatArray:
    """1 where the reference nearest neighbour ``I_true[i, 0]`` is among ``I[i]``, else 0 (faiss "1-R@k").

    Args:
        neighbors: ``(q, k)`` positions returned by the evaluated metric.
        true_neighbors: ``(q, k')`` reference positions, nearest first (only column 0 is used).

    Returns:
        ``(q,)`` float64 of 0 and 1.
    """
    result: FloatArray = (neighbors == true_neighbors[:, :1]).any(axis=1).astype(np.float64)
    return result


def ndcg_at_k(neighbors: IntArray, true_neighbors: IntArray) -> FloatArray:
    """nDCG@k with relevance ``k − r + 1`` for the item at reference rank ``r`` (1-based), 0 outside it.

    Args:
        neighbors: ``(q, k)`` positions returned by the evaluated metric, closest first.
        true_neighbors: ``(q, k)`` reference positions, closest first (distinct within a row).

    Returns:
        ``(q,)`` float64 in [0, 1].
    """
    num_rows, k = true_neighbors.shape
    # Per-row lookup of each returned position in the reference list, vectorised: offset every row's
    # positions into a disjoint range, then one global sorted search.
    stride = int(max(neighbors.max(initial=0), true_neighbors.max(initial=0))) + 1
    offsets = np.arange(num_rows, dtype=np.int64)[:, None] * stride
    keys = (true_neighbors + offsets).ravel()
    order = np.argsort(keys, kind="stable")
    wanted = (neighbors + offsets).ravel()
    slot = np.minimum(np.searchsorted(keys, wanted, sorter=order), keys.size - 1)
    found = keys[order[slot]] == wanted
    reference_rank = order[slot] % k  # 0-based rank within the row's reference list
    gains = np.where(found, k - reference_rank, 0).reshape(neighbors.shape).astype(np.float64)
    discounts = 1.0 / np.log2(np.arange(2, neighbors.shape[1] + 2))
    ideal = float(np.sum((k - np.arange(k)) / np.log2(np.arange(2, k + 2))))
    result: FloatArray = gains @ discounts / ideal
    return result


def label_precision_at_k(neighbors: IntArray, item_labels: IntArray, query_labels: IntArray) -> FloatArray:
    """Share of each row's top-k whose label equals the query's label.

    Args:
        neighbors: ``(q, k)`` positions into ``item_labels``.
        item_labels: ``(n,)`` int64 label codes; a negative code (no label) never matches.
        query_labels: ``(q,)`` int64 label codes; a negative code (no label) gives NaN for that row.

    Returns:
        ``(q,)`` float64 in [0, 1], NaN for unlabeled queries.
    """
    hits = (item_labels[neighbors] == query_labels[:, None]).mean(axis=1)
    result: FloatArray = np.where(query_labels >= 0, hits, np.nan)
    return result
