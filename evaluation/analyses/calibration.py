"""`calibration`: for each cheap metric, overlap@10 with the exact CE top-10 as a function of T on a seeded sample
of stored items as queries, and the smallest T at which it reaches a target, with a bootstrap interval — or never.

This is the number to know before using l2 (or js, ...) as a stand-in for cross-entropy on an index: CE's ranking
changes with T, l2's does not, and for networks trained with CE the two meet at some T, or never (docs/science.md).
"""

import math

import numpy as np

from indexes.errors import InvalidInputError, TemperatureNotStoredError
from indexes.metrics import exact_matrix
from indexes.store import Filter, VectorStore

from .options import AnalysisOptions, AnalysisResult
from .reading import Selection

CHEAP = ("l2", "l2_centered", "cosine", "js", "tri")
#: Temperatures measured: 0.5 to 1024, doubling.
TEMPERATURES = tuple(2.0**e for e in range(-1, 11))
#: Metrics whose ranking does not depend on T (measured once).
_T_FREE = ("l2", "l2_centered", "cosine")
K, BOOTSTRAP = 10, 1000


def calibration(
    index: VectorStore, items: Selection, options: AnalysisOptions, filter: Filter | None
) -> AnalysisResult:
    if len(items) <= K:
        raise InvalidInputError(f"calibration needs more than {K} items among those selected, not {len(items)}")
    if not 0 < options.target <= 1:
        raise InvalidInputError(f"target is an overlap@10 in (0, 1], got {options.target}")
    rng = np.random.default_rng(options.seed)
    rows = np.sort(rng.choice(len(items), size=min(options.queries, len(items)), replace=False))

    reference = {t: [set(found) for found in _ranked(index, items, rows, "ce", t, filter)] for t in TEMPERATURES}
    fixed = {metric: _ranked(index, items, rows, metric, 1.0, filter) for metric in _T_FREE}
    result_rows = []
    for metric in CHEAP:
        overlaps = np.empty((len(rows), len(TEMPERATURES)))
        for j, t in enumerate(TEMPERATURES):
            found = fixed[metric] if metric in fixed else _ranked(index, items, rows, metric, t, filter)
            overlaps[:, j] = [len(set(f) & ref) / max(1, len(ref)) for f, ref in zip(found, reference[t], strict=True)]
        means = overlaps.mean(axis=0)
        resampled = overlaps[rng.integers(0, len(rows), (BOOTSTRAP, len(rows)))].mean(axis=1)
        reached = [reaches_at(m, options.target) for m in resampled]
        finite = np.array([r for r in reached if r is not None])
        never = len(finite) < BOOTSTRAP
        low = float(np.quantile(finite, 0.025)) if len(finite) else None
        high = None if len(finite) < 0.975 * BOOTSTRAP else float(np.quantile(finite, 0.975))
        result_rows.append(
            {
                "metric": metric,
                "overlap": [float(m) for m in means],
                "reaches_at": reaches_at(means, options.target),
                "interval": [low, high],
                "never_in_resamples": float(1 - len(finite) / BOOTSTRAP) if never else 0.0,
            }
        )
    summary = {
        "temperatures": list(TEMPERATURES),
        "target": options.target,
        "queries": [items.ids[row] for row in rows.tolist()],
        "k": K,
    }
    return AnalysisResult("calibration", options.temperature, len(items), result_rows, summary)


def _ranked(
    index: VectorStore, items: Selection, rows: np.ndarray, metric: str, t: float, filter: Filter | None
) -> list[list[str]]:
    """Each sampled item's K nearest other items under `metric` at `t`, closest first: by the index's own exact
    search, or, where the index holds no vectors for `t` (a pgvector index searches its declared temperatures only),
    by the same exact values computed here over the items read."""
    try:
        result = index.search(items.logits[rows], K + 1, metric=metric, temperature=t, filter=filter, exact=True)
    except TemperatureNotStoredError:
        values = exact_matrix(metric, items.logits[rows], items.logits, t)
        values[np.arange(len(rows)), rows] = np.inf  # not itself
        order = np.argsort(values, axis=1, kind="stable")[:, :K]
        return [[items.ids[j] for j in row] for row in order.tolist()]
    return [
        [hit.id for hit in hits if hit.id != items.ids[row]][:K]
        for row, hits in zip(rows.tolist(), result.neighbors, strict=True)
    ]


def reaches_at(means: np.ndarray, target: float) -> float | None:
    """The smallest T of `TEMPERATURES` where the mean overlap reaches `target`, interpolated in log T from the
    grid point below it; None when it never does."""
    above = np.flatnonzero(means >= target - 1e-9)  # a mean of k / 10 overlaps is not exact in binary
    if not len(above):
        return None
    j = int(above[0])
    if j == 0:
        return TEMPERATURES[0]
    low, high = float(means[j - 1]), float(means[j])
    share = (target - low) / (high - low)
    return math.exp(math.log(TEMPERATURES[j - 1]) + share * (math.log(TEMPERATURES[j]) - math.log(TEMPERATURES[j - 1])))
