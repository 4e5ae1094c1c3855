"""The checks both stores run on a search's arguments before anything else, so that they refuse the same requests
with the same messages."""

from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import InvalidInputError, UnknownMetricError
from .filters import check_filter
from .metrics import SEARCH_METRICS
from .store import Filter
from .validation import check_k, check_temperature, check_vectors


@dataclass(frozen=True)
class SearchArguments:
    """A search's arguments, checked: `(q, dim)` float64 queries, k >= 1, a known metric, T > 0, a readable filter
    (or None), and a target recall in (0, 1] (or None)."""

    queries: np.ndarray
    k: int
    metric: str
    temperature: float
    filter: Filter | None
    target_recall: float | None


def check_search(
    queries: Any, dim: int, k: Any, metric: str, temperature: Any, filter: Any, target_recall: Any = None
) -> SearchArguments:
    """The arguments of a search on a store of dimension `dim`, checked (`InvalidInputError` and its kinds)."""
    if metric not in SEARCH_METRICS:
        raise UnknownMetricError(f"unknown metric {metric!r}; choose one of {', '.join(SEARCH_METRICS)}")
    if target_recall is not None and not 0 < target_recall <= 1:
        raise InvalidInputError(f"target_recall must be in (0, 1]; got {target_recall}")
    array = check_vectors(queries, dim, name="query logits", dtype=np.float64)
    return SearchArguments(
        array, check_k(k), metric, check_temperature(temperature), check_filter(filter), target_recall
    )
