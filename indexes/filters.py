"""Exact-match metadata filters, evaluated as a boolean mask over the stored rows."""

from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import InvalidInputError
from .store import Filter, Metadata

#: Reserved filter key: matches the item's argmax class instead of a metadata field.
PREDICTED = "predicted"


def check_filter(filter: Any) -> Filter | None:
    """Return a usable filter (a JSON object of scalar values), None for no filter."""
    if filter is None:
        return None
    if not isinstance(filter, dict):
        raise InvalidInputError("filter must be a JSON object of field: value pairs")
    for key, value in filter.items():
        if not isinstance(value, str | int | float | bool) and value is not None:
            raise InvalidInputError(f"filter value for {key!r} must be a string, number, boolean or null")
    if PREDICTED in filter and (isinstance(filter[PREDICTED], bool) or not isinstance(filter[PREDICTED], int)):
        raise InvalidInputError(f"filter {PREDICTED!r} is a class index and must be an integer")
    return filter


def _equal(stored: Any, wanted: Any) -> bool:
    # JSON semantics: true is not 1, "3" is not 3, but 3 and 3.0 are the same number.
    if isinstance(stored, bool) or isinstance(wanted, bool):
        return stored is wanted
    if isinstance(stored, int | float) and isinstance(wanted, int | float):
        return stored == wanted
    return type(stored) is type(wanted) and stored == wanted


def match_filter(filter: Filter, metadata: Sequence[Metadata], vectors: np.ndarray) -> np.ndarray:
    """Rows that satisfy every condition of `filter`.

    Args:
        filter: field -> required value; `"predicted"` compares with `argmax(vectors, axis=1)`.
        metadata: one dict per stored row.
        vectors: `(n, C)` stored logits, used only for `"predicted"`.

    Returns:
        `(n,)` bool mask.
    """
    mask = np.ones(len(metadata), dtype=bool)
    missing = object()
    for key, wanted in filter.items():
        if key == PREDICTED:
            mask &= vectors.argmax(axis=1) == wanted
        else:
            mask &= np.fromiter((_equal(m.get(key, missing), wanted) for m in metadata), bool, len(metadata))
    return mask
