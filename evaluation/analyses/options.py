"""What an analysis is asked (`AnalysisOptions`) and what it answers (`AnalysisResult`)."""

from dataclasses import dataclass, field
from typing import Any

from indexes.store import Filter

from .reading import DEFAULT_MAX_ITEMS


@dataclass(frozen=True)
class AnalysisOptions:
    """The options of every analysis; each kind reads those it needs (docs/analyses.md).

    Attributes:
        filter: which stored items the analysis covers (all of them: None).
        temperature: the softmax temperature T of probabilities, derived fields and divergences.
        limit: rows answered at most (the best first).
        max_items: items read at most; more matching items are a 422 before any work.
        label_field: the metadata field holding an item's given class (index or label name).
        metric: the measure neighbours are found with (label-issues, near-duplicates) or the matrix holds.
        k: neighbours looked at per item.
        threshold: near-duplicates: the largest `metric` value of a pair.
        by: uncertain: confidence, margin (the default) or entropy.
        ids: distance-matrix: the items (else those matching the filter).
        target: calibration: the overlap@10 with CE to reach.
        queries: calibration: stored items used as queries (seeded sample).
        seed: calibration: the sample's and the bootstrap's seed.
    """

    filter: Filter | None = None
    temperature: float = 1.0
    limit: int = 100
    max_items: int = DEFAULT_MAX_ITEMS
    label_field: str = "label"
    metric: str | None = None
    k: int = 10
    threshold: float | None = None
    by: str = "margin"
    ids: list[str] | None = None
    target: float = 0.9
    queries: int = 100
    seed: int = 0


@dataclass(frozen=True)
class AnalysisResult:
    """`rows` (one dict per item, pair, cell or metric, the most notable first), `summary` (what the rows are
    about: counts, the parameters used), and how many items were `read`."""

    kind: str
    temperature: float
    read: int
    rows: list[dict[str, Any]]
    summary: dict[str, Any] = field(default_factory=dict)
