"""Class separability of logits (Das & Chaudhuri 2019): inter- versus intra-class L2 distances.

The paper bounds the probability that an inter-class distance exceeds an intra-class distance in the feature space
before the softmax (the logits) as a function of the cross-entropy loss. ``separability`` estimates that probability
and the two distance distributions' moments from a labelled batch of logits, cheaply enough to run every epoch.
"""

import numpy as np

SEPARABILITY_KEYS = ("p_inter_gt_intra", "intra_mean", "inter_mean", "intra_std", "inter_std")


def separability(logits: np.ndarray, labels: np.ndarray, *, num_pairs: int = 20000, seed: int = 0) -> dict[str, float]:
    """Compare L2 distances between logits of the same class with those of different classes.

    A pair is an unordered pair of distinct rows. When there are at most ``num_pairs`` pairs in all, every pair is
    used and the result is exact; otherwise ``num_pairs`` intra-class and ``num_pairs`` inter-class pairs are drawn
    uniformly (with replacement) from their sets with a seeded generator. The probability is then the exact
    two-sample statistic over those distances (every inter distance against every intra distance, via sorting), so
    it costs O(num_pairs log num_pairs), a few milliseconds.

    Args:
        logits: ``(n, C)`` float array, one row per example.
        labels: ``(n,)`` integer class of each row.
        num_pairs: Pairs drawn per group when sampling (>= 1).
        seed: Seeds the pair sampling.

    Returns:
        ``{"p_inter_gt_intra": P(d_inter > d_intra) (ties count as not greater), "intra_mean", "inter_mean",
        "intra_std", "inter_std"}`` as Python floats; std is the population standard deviation.

    Raises:
        ValueError: On mismatched shapes, ``num_pairs < 1``, no class with two rows, or a single class.
    """
    x = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels)
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise ValueError(f"expected logits (n, C) and labels (n,), got {x.shape} and {y.shape}")
    if num_pairs < 1:
        raise ValueError(f"num_pairs must be >= 1, got {num_pairs}")
    _, y = np.unique(y, return_inverse=True)
    counts = np.bincount(y)
    if len(counts) < 2 or counts.max() < 2:
        raise ValueError(f"need >= 2 classes and a class with >= 2 rows, got class sizes {counts.tolist()}")
    n = len(y)
    if n * (n - 1) // 2 <= num_pairs:
        first, second = np.triu_indices(n, k=1)
        same = y[first] == y[second]
        intra, inter = (first[same], second[same]), (first[~same], second[~same])
    else:
        rng = np.random.default_rng(seed)
        order = np.argsort(y, kind="stable")
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        intra = _sample_intra(rng, order, counts, starts, num_pairs)
        inter = _sample_inter(rng, order, counts, starts, num_pairs)
    d_intra = np.linalg.norm(x[intra[0]] - x[intra[1]], axis=1)
    d_inter = np.linalg.norm(x[inter[0]] - x[inter[1]], axis=1)
    # Sorted queries make searchsorted cache-friendly; counts the intra distances strictly below each inter one.
    below = np.searchsorted(np.sort(d_intra), np.sort(d_inter), side="left")
    return {
        "p_inter_gt_intra": float(below.sum() / (len(d_intra) * len(d_inter))),
        "intra_mean": float(d_intra.mean()),
        "inter_mean": float(d_inter.mean()),
        "intra_std": float(d_intra.std()),
        "inter_std": float(d_inter.std()),
    }


def _sample_intra(
    rng: np.random.Generator, order: np.ndarray, counts: np.ndarray, starts: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``size`` same-class pairs uniformly: class c with weight n_c (n_c - 1), then two distinct members."""
    classes = _draw_weighted(rng, counts * (counts - 1), size)
    n_c = counts[classes]
    i = rng.integers(0, n_c)
    j = (i + 1 + rng.integers(0, n_c - 1)) % n_c  # any member but i
    return order[starts[classes] + i], order[starts[classes] + j]


def _sample_inter(
    rng: np.random.Generator, order: np.ndarray, counts: np.ndarray, starts: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``size`` different-class pairs uniformly: row i with weight n - n_(class of i), then any other-class row."""
    n = int(counts.sum())
    class_of_sorted = np.repeat(np.arange(len(counts)), counts)
    i = _draw_weighted(rng, n - counts[class_of_sorted], size)
    c = class_of_sorted[i]
    r = rng.integers(0, n - counts[c])
    j = np.where(r < starts[c], r, r + counts[c])  # skip the block of class c in sorted order
    return order[i], order[j]


def _draw_weighted(rng: np.random.Generator, weights: np.ndarray, size: int) -> np.ndarray:
    """Draw ``size`` indices with probability proportional to the non-negative integer ``weights`` (inverse CDF)."""
    cumulative = np.cumsum(weights)
    return np.searchsorted(cumulative, rng.integers(0, cumulative[-1], size=size), side="right")
