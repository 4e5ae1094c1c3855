"""`distance-matrix`: a measure between every pair of chosen stored items (by ids, or those matching a filter)."""

import numpy as np

from indexes.errors import InvalidInputError
from indexes.metrics import SEARCH_METRICS, exact_matrix
from indexes.store import VectorStore

from .options import AnalysisOptions, AnalysisResult
from .reading import Selection

#: Items of one matrix at most (a million values).
MAX_MATRIX_ITEMS = 1000


def distance_matrix(index: VectorStore, items: Selection | None, options: AnalysisOptions) -> AnalysisResult:
    """`items` are those matching the filter; with `options.ids` they are read by id instead."""
    metric = options.metric or "js"
    if metric not in SEARCH_METRICS:
        raise InvalidInputError(f"metric {metric!r}: choose one of {', '.join(SEARCH_METRICS)}")
    if options.ids is not None:
        if len(set(options.ids)) != len(options.ids):
            raise InvalidInputError("ids lists an item twice")
        stored = [index.get(item_id) for item_id in options.ids[: MAX_MATRIX_ITEMS + 1]]
        items = Selection([s.id for s in stored], np.stack([s.logits for s in stored]), [s.metadata for s in stored])
    assert items is not None
    if len(items) > MAX_MATRIX_ITEMS:
        raise InvalidInputError(
            f"a distance matrix holds at most {MAX_MATRIX_ITEMS} items, and {len(items)} were chosen: pass fewer ids "
            "or a narrower filter"
        )
    values = exact_matrix(metric, items.logits, items.logits, options.temperature)
    rows = [{"id": item_id, "distances": row.tolist()} for item_id, row in zip(items.ids, values, strict=True)]
    return AnalysisResult(
        "distance-matrix", options.temperature, len(items), rows, {"metric": metric, "ids": items.ids}
    )
