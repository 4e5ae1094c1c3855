"""Counting a store's items: how many match a filter and, grouped by a metadata key or the predicted class, how
many hold each value (facet counts), with the same grouping in both stores.

Values group as the filters compare them (`indexes.filters`): `3` with `3.0`, never `true` with `1` nor `"3"` with
`3`; objects and lists by their canonical JSON. Items without the key are counted apart (`missing`).
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .errors import InvalidInputError
from .filters import NUMERIC_DERIVED


@dataclass(frozen=True)
class Facets:
    """What a count answers: `matched` items match the filter; with a `group_by`, `groups` holds (value, count) pairs,
    the largest counts first (ties by value), `missing` the matched items without the key, and `more` is True when
    groups were left out past the limit."""

    matched: int
    groups: list[tuple[Any, int]] | None = None
    missing: int = 0
    more: bool = False


def check_group_by(group_by: str | None) -> str | None:
    """A group_by is a metadata key or `predicted`; the continuous derived fields do not group.

    Raises:
        InvalidInputError: an empty key, or confidence, margin or entropy.
    """
    if group_by is None:
        return None
    if not isinstance(group_by, str) or not group_by:
        raise InvalidInputError("group_by is a metadata key or predicted, e.g. label")
    if group_by in NUMERIC_DERIVED:
        raise InvalidInputError(
            f"cannot group by {group_by!r}, a continuous value: group by a metadata key or predicted, and filter on "
            f"{group_by} with $gt / $lt to count a range"
        )
    return group_by


def group_key(value: Any) -> tuple[str, Any]:
    """The key a value groups under: numbers by value (3 with 3.0), booleans, strings and null by type and value,
    objects and lists by canonical JSON."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return (type(value).__name__, value)
    if isinstance(value, int | float):
        return ("number", float(value))
    return ("json", json.dumps(value, sort_keys=True, separators=(",", ":")))


def collect(pairs: Iterable[tuple[Any, int]], matched: int, missing: int, limit: int) -> Facets:
    """Facets from (value, count) pairs, merging values that group together; at most `limit` groups."""
    merged: dict[tuple[str, Any], list[Any]] = {}
    for value, count in pairs:
        if count:
            entry = merged.setdefault(group_key(value), [value, 0])
            entry[1] += count
    ranked = sorted(merged.items(), key=lambda item: (-item[1][1], item[0][0], str(item[0][1])))
    groups = [(value, int(count)) for _, (value, count) in ranked[:limit]]
    return Facets(matched, groups, missing, len(ranked) > limit)
