"""Exact-match metadata filters, evaluated as a boolean mask over the stored rows."""

import json
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import InvalidInputError, MixedTypeFilterError
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


_NO, _YES, _OTHER_TYPE = 0, 1, 2
#: A JSON number literal: the strings that a filter refuses to tell apart silently from the number they spell.
JSON_NUMBER_PATTERN = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
_JSON_NUMBER = re.compile(JSON_NUMBER_PATTERN)


def spelled_number(text: str) -> float | None:
    """The number `text` spells as a JSON number literal ("7", "7.0", "7e0" spell 7), else None."""
    return float(text) if _JSON_NUMBER.fullmatch(text) is not None else None


def _spells(text: str, number: float) -> bool:
    """Whether `text` is the JSON spelling of `number` ("7" or "7.0" for 7)."""
    return spelled_number(text) == number


def _compare(stored: Any, wanted: Any) -> int:
    """`_YES` when `stored` equals `wanted` in JSON semantics (true is not 1, "3" is not 3, 3 is 3.0), else
    `_OTHER_TYPE` when one is a number and the other a string spelling it, else `_NO`."""
    if isinstance(stored, bool) or isinstance(wanted, bool):
        return _YES if stored is wanted else _NO
    if type(stored) is type(wanted) or (isinstance(stored, int | float) and isinstance(wanted, int | float)):
        return _YES if stored == wanted else _NO
    if isinstance(stored, str) and isinstance(wanted, int | float):
        return _OTHER_TYPE if _spells(stored, wanted) else _NO
    if isinstance(wanted, str) and isinstance(stored, int | float):
        return _OTHER_TYPE if _spells(wanted, stored) else _NO
    return _NO


def _describe(value: Any) -> str:
    return f"the {'string' if isinstance(value, str) else 'number'} {json.dumps(value)}"


def mixed_type_error(key: str, wanted: Any, stored: Any, count: int) -> MixedTypeFilterError:
    return MixedTypeFilterError(
        f"filter {{{json.dumps(key)}: {json.dumps(wanted)}}} matches {_describe(wanted)}, but {count} item(s) "
        f"hold {_describe(stored)} in {key!r}, which it would skip: the field holds both numbers and strings. "
        "Store one type (upsert those items again), or search once with each"
    )


def match_filter(
    filter: Filter, metadata: Sequence[Metadata], vectors: np.ndarray, codes: np.ndarray | None = None
) -> np.ndarray:
    """Rows that satisfy every condition of `filter`.

    Args:
        filter: field -> required value; `"predicted"` compares with `argmax(vectors, axis=1)`.
        metadata: one dict per stored row, or with `codes` the distinct dicts the rows point to.
        vectors: `(n, C)` stored logits, used only for `"predicted"`.
        codes: `(n,)` row -> position in `metadata` (each distinct dict is then compared once), or None.

    Returns:
        `(n,)` bool mask.

    Raises:
        MixedTypeFilterError: a condition would skip items holding its value as another JSON type (a number
            and the string spelling it, `7` and `"7"`) instead of matching part of what the caller means.
    """
    num_rows = len(metadata) if codes is None else len(codes)
    mask = np.ones(num_rows, dtype=bool)
    missing = object()
    for key, wanted in filter.items():
        if key == PREDICTED:
            mask &= vectors.argmax(axis=1) == wanted
            continue
        compared = np.fromiter((_compare(m.get(key, missing), wanted) for m in metadata), np.int8, len(metadata))
        per_row = compared if codes is None else compared[codes]
        other = np.flatnonzero(per_row == _OTHER_TYPE)
        if other.size:
            example = metadata[other[0] if codes is None else codes[other[0]]]
            raise mixed_type_error(key, wanted, example[key], other.size)
        mask &= per_row == _YES
    return mask
