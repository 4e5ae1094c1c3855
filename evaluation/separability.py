"""Das & Chaudhuri (2019) reproduced: separability of classes in logit space, per training epoch and on the index.

Per epoch, the numbers come from the model spec's ``training["trajectory"]`` (logged while the model trained, by
`models.separability.separability`). On the served index the same function gives ``P(d_inter > d_intra)`` over
the labeled items, and seeded same-class / different-class pairs give the distance histograms.
"""

from typing import Any

import numpy as np
import numpy.typing as npt

from models.separability import separability

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
_OPTIONAL_KEYS = ("test_accuracy", "intra_mean", "inter_mean")


def trajectory_rows(training: dict[str, Any]) -> list[dict[str, Any]]:
    """``[{"epoch", "loss", "p_inter_gt_intra", ...}]`` from a spec's training record (loss = train loss).

    Epochs logged without ``p_inter_gt_intra`` (models trained before it was recorded) are left out.
    """
    trajectory = training.get("trajectory")
    rows: list[dict[str, Any]] = []
    for entry in trajectory if isinstance(trajectory, list) else []:
        if not isinstance(entry, dict) or entry.get("p_inter_gt_intra") is None:
            continue
        row = {
            "epoch": entry.get("epoch"),
            "loss": entry.get("train_loss"),
            "p_inter_gt_intra": entry["p_inter_gt_intra"],
        }
        rows.append(row | {key: entry[key] for key in _OPTIONAL_KEYS if key in entry})
    return rows


def _draw(rng: np.random.Generator, weights: IntArray, size: int) -> IntArray:
    """``size`` indices drawn with probability proportional to the integer ``weights`` (inverse CDF)."""
    cumulative = np.cumsum(weights)
    drawn: IntArray = np.searchsorted(cumulative, rng.integers(0, cumulative[-1], size=size), side="right")
    return drawn


def sample_class_pairs(labels: IntArray, num_pairs: int, seed: int) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """Seeded pairs of distinct items, uniform over same-class pairs and over different-class pairs.

    Args:
        labels: ``(n,)`` int64 class codes 0..c-1; at least 2 classes and one with 2 members.
        num_pairs: pairs of each kind.
        seed: seeds the draw.

    Returns:
        ``(intra_i, intra_j, inter_i, inter_j)``, each ``(num_pairs,)`` positions into ``labels``.
    """
    rng = np.random.default_rng([seed, 4])
    order = np.argsort(labels, kind="stable")
    counts = np.bincount(labels)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    classes = _draw(rng, counts * (counts - 1), num_pairs)  # a class weighs its number of ordered pairs
    size = counts[classes]
    i = rng.integers(0, size)
    j = (i + 1 + rng.integers(0, size - 1)) % size
    sorted_class = np.repeat(np.arange(len(counts)), counts)
    first = _draw(rng, len(labels) - counts[sorted_class], num_pairs)  # an item weighs its other-class partners
    own = sorted_class[first]
    other = rng.integers(0, len(labels) - counts[own])
    second = np.where(other < starts[own], other, other + counts[own])  # skip the item's own class block
    return order[starts[classes] + i], order[starts[classes] + j], order[first], order[second]


def measure_separability(
    logits: npt.ArrayLike, labels: IntArray, num_pairs: int, bins: int, seed: int
) -> dict[str, Any] | None:
    """Separability of the labeled items: the summary and intra/inter-class L2 distance histograms.

    Args:
        logits: ``(n, C)`` item logits.
        labels: ``(n,)`` int64 codes, negative for unlabeled items (left out).
        num_pairs: pairs of each kind (same class, different class).
        bins: histogram bins, shared by both distributions.
        seed: seeds the pairs.

    Returns:
        ``{"p_inter_gt_intra", "intra_mean", "inter_mean", "intra_std", "inter_std", "num_items", "num_pairs",
        "histogram": {"edges", "intra", "inter"}}`` (histogram counts over ``num_pairs`` pairs each), or None when
        fewer than 2 classes are labeled or no class has 2 items.
    """
    labeled = np.flatnonzero(labels >= 0)
    _, codes = np.unique(labels[labeled], return_inverse=True)
    counts = np.bincount(codes) if codes.size else np.zeros(0, np.int64)
    if counts.size < 2 or counts.max() < 2:
        return None
    x = np.asarray(logits, dtype=np.float64)[labeled]
    summary = separability(x, codes, num_pairs=num_pairs, seed=seed)
    intra_i, intra_j, inter_i, inter_j = sample_class_pairs(codes.astype(np.int64), num_pairs, seed)
    intra = np.linalg.norm(x[intra_i] - x[intra_j], axis=1)
    inter = np.linalg.norm(x[inter_i] - x[inter_j], axis=1)
    edges = np.linspace(0.0, float(max(intra.max(), inter.max())) or 1.0, bins + 1)
    histogram = {
        "edges": edges.tolist(),
        "intra": np.histogram(intra, edges)[0].tolist(),
        "inter": np.histogram(inter, edges)[0].tolist(),
    }
    return summary | {"num_items": int(labeled.size), "num_pairs": num_pairs, "histogram": histogram}
