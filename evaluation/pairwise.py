"""Connor et al. (Entropy 2024) reproduced: correlations between CE, KL, JS, triangular and Euclidean over random pairs."""

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from indexes.divergences import compute_divergence, compute_divergences

from .measures import center_rows
from .ranking import pearson_rows, spearman_rows
from .saturation import order_keys, tied_share

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Measures compared pairwise, in report order (Euclidean over raw and over mean-centred logits).
PAIRWISE_MEASURES: tuple[str, ...] = ("ce", "kl", "js", "tri", "euclidean", "euclidean_centered")


def sample_pairs(num_items: int, num_pairs: int, seed: int) -> tuple[IntArray, IntArray]:
    """Seeded random ordered pairs ``(i, j)`` of distinct positions, uniform over all such pairs.

    Args:
        num_items: n >= 2.
        num_pairs: pairs to draw (with replacement across pairs).
        seed: seeds the draw.

    Returns:
        ``(first, second)``, each ``(num_pairs,)`` int64 with ``first != second``.
    """
    rng = np.random.default_rng([seed, 3])
    first = rng.integers(0, num_items, size=num_pairs)
    second = (first + rng.integers(1, num_items, size=num_pairs)) % num_items
    return first.astype(np.int64), second.astype(np.int64)


def measure_pairs(a: npt.ArrayLike, b: npt.ArrayLike, temperature: float) -> dict[str, FloatArray]:
    """Every measure of `PAIRWISE_MEASURES` between ``a[i]`` (reference) and ``b[i]``.

    Args:
        a: ``(m, C)`` logits.
        b: ``(m, C)`` logits.
        temperature: T > 0 for the divergences; the Euclidean distances ignore it.

    Returns:
        ``{measure: (m,) float64}``.
    """
    values = compute_divergences(a, b, measures=("ce", "kl", "js", "tri", "euclidean"), temperature=temperature)
    centered = compute_divergence(center_rows(np.asarray(a)), center_rows(np.asarray(b)), measure="euclidean")
    return {name: values[name] for name in PAIRWISE_MEASURES[:-1]} | {"euclidean_centered": centered}


def correlate_measures(
    logits: npt.ArrayLike, temperatures: Sequence[float], num_pairs: int, seed: int
) -> list[dict[str, Any]]:
    """Pearson and Spearman correlation between every two measures over random item pairs, per temperature.

    Args:
        logits: ``(n, C)`` item logits, n >= 2.
        temperatures: softmax temperatures.
        num_pairs: random pairs of distinct items (the same pairs at every temperature).
        seed: seeds the pairs.

    Spearman ranks js and tri by their true order (`saturation.order_keys`): at low T most pairs tie at their
    maxima in float64 and would otherwise be ranked by rounding noise. Pearson uses the values as they are (those
    ties are at most an ulp apart in value).

    Returns:
        ``[{"temperature", "a", "b", "pearson", "spearman", "spearman_ties"}]`` for each temperature and each
        unordered pair of `PAIRWISE_MEASURES` (in that order); a correlation with a constant measure is None;
        ``spearman_ties`` is the larger share of distinct pairs whose rank key still ties another's on either
        side (a Spearman that rests on ties when above 0; a pair drawn twice, either way round, counts once).
    """
    x = np.asarray(logits, dtype=np.float64)
    first, second = sample_pairs(len(x), num_pairs, seed)
    # A pair drawn twice (either way round: js, tri and L2 are symmetric) ties truly; count it once.
    _, distinct = np.unique(np.minimum(first, second) * len(x) + np.maximum(first, second), return_index=True)
    rows: list[dict[str, Any]] = []
    for temperature in temperatures:
        values = measure_pairs(x[first], x[second], temperature)
        keys = {name: order_keys(name, v, x[first], x[second], temperature) for name, v in values.items()}
        ties = {name: tied_share(k[distinct]) for name, k in keys.items()}
        for a, b in itertools.combinations(PAIRWISE_MEASURES, 2):
            pearson = float(pearson_rows(values[a][None], values[b][None])[0])
            spearman = float(spearman_rows(keys[a][None], keys[b][None])[0])
            rows.append(
                {
                    "temperature": float(temperature),
                    "a": a,
                    "b": b,
                    "pearson": None if np.isnan(pearson) else pearson,
                    "spearman": None if np.isnan(spearman) else spearman,
                    "spearman_ties": max(ties[a], ties[b]),
                }
            )
    return rows
