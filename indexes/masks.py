"""Filters evaluated columnar over the FAISS store's rows: metadata once per distinct object, derived fields as
numpy over the logits, combined as boolean masks (never a Python loop over the rows)."""

from collections.abc import Sequence
from typing import Any

import numpy as np

from .filters import (
    _OTHER_TYPE,
    _YES,
    COMPARISONS,
    PREDICTED,
    Condition,
    Node,
    checks_types,
    compare_any,
    mixed_type_error,
    parse_filter,
)
from .store import Filter, Metadata

#: Scaled logits below this count as minus infinity (exp is 1e-304 there), in numpy as in SQL.
_FLOOR = -700.0
#: Derived values are computed in float64 over blocks of about this many logits at a time.
_BLOCK_VALUES = 1 << 20


def match_filter(
    filter: Filter,
    metadata: Sequence[Metadata],
    vectors: np.ndarray,
    codes: np.ndarray | None = None,
    temperature: float = 1.0,
) -> np.ndarray:
    """Rows that satisfy `filter` (`indexes.filters`).

    Args:
        filter: the JSON filter; `predicted` takes class indexes here.
        metadata: one dict per stored row, or with `codes` the distinct dicts the rows point to.
        vectors: `(n, C)` stored logits, read for the derived fields only.
        codes: `(n,)` row -> position in `metadata` (each distinct dict is then read once per condition), or None.
        temperature: softmax temperature T > 0 of `confidence`, `margin` and `entropy`.

    Returns:
        `(n,)` bool mask.

    Raises:
        InvalidInputError: a filter the grammar does not accept.
        MixedTypeFilterError: an equality (or `$in`) would skip items holding its value as another JSON type (a
            number and the string spelling it, `7` and `"7"`) instead of matching part of what the caller means.
    """
    node = parse_filter(filter)
    num_rows = len(metadata) if codes is None else len(codes)
    if node is None:
        return np.ones(num_rows, dtype=bool)
    return _Columns(metadata, vectors, codes, temperature).mask(node)


class _Columns:
    """One evaluation: the rows' metadata and logits, with each derived field computed at most once."""

    def __init__(self, metadata: Sequence[Metadata], vectors: np.ndarray, codes: np.ndarray | None, t: float) -> None:
        self.metadata, self.vectors, self.codes, self.temperature = metadata, vectors, codes, t
        self.num_rows = len(metadata) if codes is None else len(codes)
        self._derived: dict[str, np.ndarray] = {}

    def mask(self, node: Node) -> np.ndarray:
        if isinstance(node, Condition):
            return self._condition(node)
        masks = [self.mask(part) for part in node.parts]
        if node.op == "$not":
            return ~masks[0]
        if not masks:
            return np.ones(self.num_rows, dtype=bool)
        combine = np.logical_and if node.op == "$and" else np.logical_or
        return np.asarray(combine.reduce(masks), dtype=bool)

    def _condition(self, condition: Condition) -> np.ndarray:
        field, op, wanted = condition.field, condition.op, condition.value
        if op == "$exists":
            present = np.ones(self.num_rows, dtype=bool) if field in _DERIVED_VALUES else self._present(field)
            return present if wanted else ~present
        if field in _DERIVED_VALUES:
            return _apply(op, self._derived_values(field), wanted)
        if op in COMPARISONS:
            per_object = [_compares(m.get(field), op, wanted) for m in self.metadata]
            return self._per_row(np.fromiter(per_object, dtype=bool, count=len(self.metadata)))
        values = wanted if op in ("$in", "$nin") else (wanted,)
        missing = object()
        compared = np.fromiter(
            (compare_any(m.get(field, missing), values) for m in self.metadata), np.int8, len(self.metadata)
        )
        per_row = self._per_row(compared)
        if checks_types(condition):
            other = np.flatnonzero(per_row == _OTHER_TYPE)
            if other.size:
                example = self.metadata[other[0] if self.codes is None else self.codes[other[0]]]
                raise mixed_type_error(field, wanted, example[field], other.size)
        matched: np.ndarray = per_row == _YES
        return matched if op in ("$eq", "$in") else ~matched

    def _present(self, field: str) -> np.ndarray:
        return self._per_row(np.fromiter((field in m for m in self.metadata), dtype=bool, count=len(self.metadata)))

    def _per_row(self, per_object: np.ndarray) -> np.ndarray:
        return per_object if self.codes is None else per_object[self.codes]

    def _derived_values(self, field: str) -> np.ndarray:
        if field not in self._derived:
            self._derived[field] = _DERIVED_VALUES[field](self.vectors, self.temperature)
        return self._derived[field]


def _compares(stored: Any, op: str, wanted: float) -> bool:
    """A numeric comparison of one stored value: numbers only (not booleans, strings, missing or null)."""
    if not isinstance(stored, int | float) or isinstance(stored, bool):
        return False
    return bool(_OPERATIONS[op](stored, wanted))


_OPERATIONS = {
    "$eq": np.equal,
    "$ne": np.not_equal,
    "$gt": np.greater,
    "$gte": np.greater_equal,
    "$lt": np.less,
    "$lte": np.less_equal,
}


def _apply(op: str, values: np.ndarray, wanted: Any) -> np.ndarray:
    """`(n,)` mask of one operator on a derived column (a number is never equal to a string or null)."""
    if op in ("$in", "$nin"):
        numbers = [w for w in wanted if isinstance(w, int | float) and not isinstance(w, bool)]
        inside = np.isin(values, np.array(numbers, dtype=values.dtype if numbers else np.float64))
        return inside if op == "$in" else ~inside
    return np.asarray(_OPERATIONS[op](values, wanted), dtype=bool)


def derived_values(field: str, vectors: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """`(n,)` values of a derived field (`predicted`, `confidence`, `margin`, `entropy`) of `(n, C)` logits at T."""
    values: np.ndarray = _DERIVED_VALUES[field](vectors, temperature)
    return values


def predicted_classes(vectors: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """`(n,)` int64 argmax class of `(n, C)` logits (the first one on ties; T does not change it)."""
    classes: np.ndarray = vectors.argmax(axis=1).astype(np.int64)
    return classes


def _softmax_statistic(field: str) -> Any:
    def statistic(vectors: np.ndarray, temperature: float) -> np.ndarray:
        num_rows, num_classes = vectors.shape
        out = np.empty(num_rows, dtype=np.float64)
        step = max(1, _BLOCK_VALUES // max(num_classes, 1))
        for start in range(0, num_rows, step):
            # Shift before scaling, and floor: at a tiny T, z / T overflows and inf - inf is NaN (the SQL does the same).
            block = vectors[start : start + step].astype(np.float64)
            z = np.maximum((block - block.max(axis=1, keepdims=True)) / temperature, _FLOOR)
            exp = np.exp(z)
            total = exp.sum(axis=1, keepdims=True)
            p = exp / total
            if field == "confidence":
                out[start : start + step] = p.max(axis=1)
            elif field == "margin":
                top = (
                    np.partition(p, num_classes - 2, axis=1)[:, -2:] if num_classes > 1 else np.pad(p, ((0, 0), (1, 0)))
                )
                out[start : start + step] = top[:, 1] - top[:, 0]
            else:  # entropy in nats: log p = z - log(total)
                out[start : start + step] = -(p * (z - np.log(total))).sum(axis=1)
        return out

    return statistic


_DERIVED_VALUES = {
    PREDICTED: predicted_classes,
    "confidence": _softmax_statistic("confidence"),
    "margin": _softmax_statistic("margin"),
    "entropy": _softmax_statistic("entropy"),
}
