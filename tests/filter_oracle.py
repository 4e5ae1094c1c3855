"""A reference evaluator of filters, one item at a time in plain Python, written apart from `indexes.filters`.

It is the oracle both stores are compared with: `matches` says whether an item passes a filter, `skips_other_type`
whether the stores must refuse the filter with `MixedTypeFilterError` (an equality or `$in` value that some
listed item holds as the other JSON type, a number and the string spelling it, and no other value matches).
"""

import math
import re
from collections.abc import Sequence
from typing import Any

_NUMBER = re.compile(r"-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?")
_MISSING = object()


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality of scalars: 3 == 3.0, true is not 1, "3" is not 3, null only equals null."""
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    return type(a) is type(b) and a == b


def _spells(text: Any, number: Any) -> bool:
    return (
        isinstance(text, str) and _is_number(number) and _NUMBER.fullmatch(text) is not None and float(text) == number
    )


def derived(logits: Sequence[float], field: str, temperature: float) -> float | int:
    """`predicted`, `confidence`, `margin` or `entropy` (nats) of one item's logits at `temperature`."""
    if field == "predicted":
        return max(range(len(logits)), key=lambda c: (logits[c], -c))
    scaled = [float(x) / temperature for x in logits]
    top = max(scaled)
    weights = [math.exp(x - top) for x in scaled]
    total = sum(weights)
    probs = sorted((w / total for w in weights), reverse=True)
    if field == "confidence":
        return probs[0]
    if field == "margin":
        return probs[0] - (probs[1] if len(probs) > 1 else 0.0)
    return -sum(p * math.log(p) for p in probs if p > 0)


def _value(field: str, logits: Sequence[float], metadata: dict[str, Any], temperature: float) -> Any:
    if field in ("predicted", "confidence", "margin", "entropy"):
        return derived(logits, field, temperature)
    return metadata.get(field, _MISSING)


def _operator(op: str, stored: Any, wanted: Any) -> bool:
    if op == "$exists":
        return (stored is not _MISSING) == wanted
    if op == "$eq":
        return stored is not _MISSING and json_equal(stored, wanted)
    if op == "$ne":
        return not _operator("$eq", stored, wanted)
    if op == "$in":
        return any(_operator("$eq", stored, w) for w in wanted)
    if op == "$nin":
        return not _operator("$in", stored, wanted)
    if not _is_number(stored):
        return False
    return {"$gt": stored > wanted, "$gte": stored >= wanted, "$lt": stored < wanted, "$lte": stored <= wanted}[op]


def matches(filter: dict[str, Any], logits: Sequence[float], metadata: dict[str, Any], temperature: float) -> bool:
    """Whether one item passes `filter` (every key of an object must hold)."""
    for key, value in filter.items():
        if key == "$and" and not all(matches(f, logits, metadata, temperature) for f in value):
            return False
        if key == "$or" and not any(matches(f, logits, metadata, temperature) for f in value):
            return False
        if key == "$not" and matches(value, logits, metadata, temperature):
            return False
        if key.startswith("$"):
            continue
        operators = value if isinstance(value, dict) else {"$eq": value}
        stored = _value(key, logits, metadata, temperature)
        if not all(_operator(op, stored, wanted) for op, wanted in operators.items()):
            return False
    return True


def _equalities(filter: dict[str, Any]) -> list[tuple[str, list[Any]]]:
    found = []
    for key, value in filter.items():
        if key in ("$and", "$or"):
            found += [e for f in value for e in _equalities(f)]
        elif key == "$not":
            found += _equalities(value)
        elif key not in ("predicted", "confidence", "margin", "entropy"):
            operators = value if isinstance(value, dict) else {"$eq": value}
            found += [(key, [w] if op == "$eq" else list(w)) for op, w in operators.items() if op in ("$eq", "$in")]
    return found


def skips_other_type(filter: dict[str, Any], metadata: Sequence[dict[str, Any]]) -> bool:
    """Whether an equality of `filter` (anywhere in it) would skip a listed item holding its value as the other
    JSON type, with none of its values equal to what the item holds."""
    for key, wanted in _equalities(filter):
        for m in metadata:
            stored = m.get(key, _MISSING)
            if any(json_equal(stored, w) for w in wanted if stored is not _MISSING):
                continue
            if any(_spells(stored, w) or _spells(w, stored) for w in wanted):
                return True
    return False
