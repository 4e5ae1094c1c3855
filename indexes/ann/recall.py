"""Recall measured on the index: the calibration of each (metric, T) on the ladder, and where it is measured."""

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from .encodings import interpolation
from .options import _FAMILY_OF, CALIBRATION_NOISE, CALIBRATION_QUERIES, RECALL_K, AnnOptions


@dataclass
class Calibration:
    """Recall@10 of one metric at one T, at every step of the ladder, measured against the exact scan."""

    metric: str
    temperature: float | None
    steps: list[tuple[int, int, float]]  # (efSearch or nprobe, R, recall@10)
    queries: int
    items: int
    seconds: list[float] = field(default_factory=list)  # per query of each step, searched as one batch
    exact_seconds: float = math.inf  # per query of the exact scan, searched as one batch
    measured_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def beats_exact_in_batches(self, step: int) -> bool:
        """Whether the step searched a batch faster than the exact scan did (flat BLAS scans of batches are fast);
        a step past the last one measured (the ladder stops at recall 1.0) is that last one."""
        if not self.seconds:
            return True
        return self.seconds[min(step, len(self.seconds) - 1)] < self.exact_seconds

    def first_reaching(self, target: float) -> int | None:
        """Index of the cheapest step whose recall reaches `target`, or None."""
        return next((i for i, (_, _, recall) in enumerate(self.steps) if recall >= target - 1e-12), None)

    def recall_for(self, target: float) -> float:
        """The recall@10 of the step searches use for `target`; the last step's where none reaches it."""
        step = self.first_reaching(target)
        return self.steps[-1 if step is None else step][2]

    def describe(self, target: float, param_name: str) -> dict[str, Any]:
        """This calibration as an index's info shows it: the recall for `target`, the step chosen for it
        (`param_name` is `ef_search` or `nprobe`, None where no step reaches the target), when and on what it was
        measured, and every step, with the times per query when they were measured."""
        step = self.first_reaching(target)
        chosen = self.steps[step] if step is not None else None
        row: dict[str, Any] = {
            "metric": self.metric,
            "temperature": self.temperature,
            "recall_at_10": self.recall_for(target),
            "reaches_target": chosen is not None,
            param_name: chosen[0] if chosen else None,
            "candidates": chosen[1] if chosen else None,
            "measured_at": self.measured_at,
            "queries": self.queries,
            "items": self.items,
        }
        if not self.seconds:
            row["steps"] = [{param_name: p, "candidates": r, "recall_at_10": v} for p, r, v in self.steps]
            return row
        row["exact_ms_per_query"] = round(self.exact_seconds * 1e3, 4)
        row["steps"] = [
            {param_name: p, "candidates": r, "recall_at_10": v, "ms_per_query": round(ms * 1e3, 4)}
            for (p, r, v), ms in zip(self.steps, self.seconds, strict=True)
        ]
        return row


def recall_by_metric(calibrations: Iterable[Calibration], target: float) -> dict[str, float]:
    """Per metric, the recall@10 of its searches for `target`, the lowest over its temperatures."""
    recall: dict[str, float] = {}
    for calibration in calibrations:
        recall[calibration.metric] = min(recall.get(calibration.metric, 1.0), calibration.recall_for(target))
    return recall


def recall_at_10(approximate: list[list[str]], exact: list[list[str]], own: list[str]) -> float:
    """Mean share of each query's exact top 10 found by the approximate search, each query's own item left out of
    both lists (stored items as queries, searched for 11)."""
    hits = []
    for me, found, truth in zip(own, approximate, exact, strict=True):
        true_ten = [item for item in truth if item != me][:RECALL_K]
        if true_ten:
            hits.append(len(set(found) & set(true_ten)) / len(true_ten))
    return float(np.mean(hits)) if hits else 1.0


def calibration_points(options: AnnOptions, metric: str) -> list[float | None]:
    """The temperatures a metric's recall is measured at: none for l2, l2_centered and cosine; each declared T for
    js and tri; for ce and kl every grid T and each interval's geometric midpoint (interpolation is worst there)."""
    family = _FAMILY_OF[metric]
    if family in ("l2", "l2_centered", "cosine"):
        return [None]
    if family == "js":
        return [float(t) for t in sorted(set(options.temperatures))]
    grid: list[float] = options.grid().tolist()
    points: list[float | None] = [*sorted(grid + [math.sqrt(a * b) for a, b in zip(grid, grid[1:], strict=False)])]
    return points


def sample_rows(num_rows: int, size: int = CALIBRATION_QUERIES, seed: int = 0) -> np.ndarray:
    """A seeded sample of row positions, ascending."""
    size = min(size, num_rows)
    return np.sort(np.random.default_rng(seed).choice(num_rows, size, replace=False))


def calibration_queries(rows: np.ndarray, seed: int = 0) -> np.ndarray:
    """`(q, C)` float64 queries recall is measured with: the sampled stored rows `rows` `(q, C)`, each plus seeded
    Gaussian noise of `CALIBRATION_NOISE` times its class's standard deviation over the sample.

    A stored row as a query sits among items that were drawn beside it, and measured optimistic: ce recall@10 0.969
    against 0.948 for held-out queries at N = 1M, C = 100, T = 1. The perturbed row still leaves its own item out
    (`recall_at_10`), as its near-copy would not be stored for a new query.
    """
    queries = np.asarray(rows, dtype=np.float64)
    scale = CALIBRATION_NOISE * queries.std(axis=0) if len(queries) > 1 else np.zeros(queries.shape[1])
    perturbed: np.ndarray = queries + np.random.default_rng(seed).standard_normal(queries.shape) * scale
    return perturbed


def recall_points(options: AnnOptions) -> list[tuple[str, float | None]]:
    """Every (metric, T) whose recall an index measures (kl shares ce's: it ranks the same)."""
    points: list[tuple[str, float | None]] = []
    for metric in options.metrics:
        if metric == "kl" and "ce" in options.metrics:
            continue
        points.extend((metric, t) for t in calibration_points(options, metric))
    return points


def bracket(options: AnnOptions, metric: str, temperature: float) -> list[float | None] | None:
    """The calibration temperatures whose recall bounds a search's at T, or None when T is not served."""
    family = _FAMILY_OF.get(metric)
    if family is None or metric not in options.metrics:
        return None
    if family in ("l2", "l2_centered", "cosine"):
        return [None]
    if family == "js":
        return [temperature] if temperature in options.temperatures else None
    grid = options.grid()
    weights = interpolation(grid, temperature)
    if weights is None:
        return None
    used: list[float] = grid[weights > 0].tolist()
    if len(used) == 1:
        return [used[0]]
    return [used[0], math.sqrt(used[0] * used[1]), used[1]]
