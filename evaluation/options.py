"""What an evaluation run computes and how much of the index it samples; validated on construction."""

import math
from dataclasses import asdict, dataclass
from typing import Any

from .errors import EvaluationConfigError
from .measures import RANKING_METRICS, check_metrics

#: The temperatures of Connor et al.'s sweep (0.1 ... 100).
DEFAULT_TEMPERATURES: tuple[float, ...] = (0.1, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 100.0)
MAX_TEMPERATURES = 16
MAX_K = 1000


def check_temperatures(temperatures: Any) -> tuple[float, ...]:
    """Return 1..16 distinct finite temperatures > 0 as floats, in the order given.

    Raises:
        EvaluationConfigError: an empty or too long list, or a value that is not a finite number > 0.
    """
    values = list(temperatures) if isinstance(temperatures, list | tuple) else None
    if not values or len(values) > MAX_TEMPERATURES:
        raise EvaluationConfigError(
            f"temperatures must be a list of 1 to {MAX_TEMPERATURES} numbers, got {temperatures}"
        )
    for t in values:
        if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t) or t <= 0:
            raise EvaluationConfigError(f"every temperature must be a finite number > 0, got {t!r}")
    return tuple(dict.fromkeys(float(t) for t in values))


def _check_count(name: str, value: Any, minimum: int, maximum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise EvaluationConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise EvaluationConfigError(f"{name} = {value} is above the limit of {maximum}")


#: Default budget of the measure correlations, in pairs x classes.
PAIRWISE_WORK = 1_000_000
#: Default budget of the ranking, in ranked items x classes.
RANKING_WORK = 20_000_000


@dataclass(frozen=True)
class EvaluationOptions:
    """Options of one evaluation run (`evaluation.report.evaluate_store`).

    Attributes:
        num_queries: queries to sample (held-out ``split == "test"`` items when the index has them).
        temperatures: softmax temperatures, 1..16 finite values > 0 (ranking and pairwise sections).
        k: neighbours for overlap, recall, nDCG and label precision, 1..1000.
        metrics: search metrics compared with the CE ranking, from `RANKING_METRICS`.
        seed: seeds every sample; the same seed on the same index gives the same report.
        num_items: rank each query against at most this many items (a seeded sample); None = all of them up to
            `ranked_items(C)`.
        kendall_items: Kendall's tau is computed over a seeded sample of this many of the ranked items ...
        kendall_queries: ... for a seeded sample of this many of the queries.
        num_pairs: random item pairs for the pairwise correlations between measures; None = `pairwise_pairs(C)`.
        separability_pairs: intra-class and inter-class pairs (each) for the separability estimate.
        histogram_bins: bins of the intra/inter-class distance histograms.
    """

    num_queries: int = 200
    temperatures: tuple[float, ...] = DEFAULT_TEMPERATURES
    k: int = 10
    metrics: tuple[str, ...] = RANKING_METRICS
    seed: int = 0
    num_items: int | None = None
    kendall_items: int = 2000
    kendall_queries: int = 50
    num_pairs: int | None = None
    separability_pairs: int = 10_000
    histogram_bins: int = 40

    def __post_init__(self) -> None:
        """Normalise the lists and raise `EvaluationConfigError` naming the first bad option."""
        object.__setattr__(self, "temperatures", check_temperatures(self.temperatures))
        object.__setattr__(self, "metrics", check_metrics(self.metrics))
        _check_count("num_queries", self.num_queries, 1)
        _check_count("k", self.k, 1, MAX_K)
        _check_count("seed", self.seed, 0)
        if self.num_items is not None:
            _check_count("num_items", self.num_items, 2)
        _check_count("kendall_items", self.kendall_items, 2)
        _check_count("kendall_queries", self.kendall_queries, 1)
        if self.num_pairs is not None:
            _check_count("num_pairs", self.num_pairs, 3)
        _check_count("separability_pairs", self.separability_pairs, 1)
        _check_count("histogram_bins", self.histogram_bins, 1, 1000)

    def pairwise_pairs(self, num_classes: int) -> int:
        """Pairs for the measure correlations: `num_pairs`, or 10,000 scaled down above C = 100 (1,000 at C = 1000).

        Each pair costs every divergence in float64 over C classes; this keeps that part at the cost it has at
        C = 100 (a second or two) while keeping at least 1,000 pairs.
        """
        if self.num_pairs is not None:
            return self.num_pairs
        return max(1_000, min(10_000, PAIRWISE_WORK // max(num_classes, 1)))

    def ranked_items(self, num_classes: int) -> int | None:
        """The cap on ranked items: `num_items`, or (when None) a sample above 20M items x classes (20,000 at C = 1000).

        The ranking costs every metric over every ranked item and class; this keeps a default run at C = 1000 to
        minutes on 2 cores while ranking every item of a 100k-item index up to C = 200.
        """
        if self.num_items is not None:
            return self.num_items
        cap = RANKING_WORK // max(num_classes, 1)
        return cap if cap < 2_000_000 else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready options (tuples become lists)."""
        values = asdict(self)
        return {key: list(value) if isinstance(value, tuple) else value for key, value in values.items()}
