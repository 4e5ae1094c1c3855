"""Filters: a small JSON grammar of conditions on metadata and derived fields, parsed once into a tree.

Grammar (docs/filters.md): `{"field": value}` (equality), `{"field": {"$eq"|"$ne"|"$in"|"$nin"|"$gt"|"$gte"|
"$lt"|"$lte"|"$exists": ...}}`, `{"$and"|"$or": [filter, ...]}`, `{"$not": filter}`; the keys of one object
are all required. Fields are metadata keys or the derived `predicted`, `confidence`, `margin`, `entropy`.
Values compare as JSON (3 is 3.0, true is not 1, "3" is not 3); `$ne` and `$nin` match items missing the
field, numeric comparisons match numbers only. The stores evaluate the tree: `indexes.masks` (FAISS, columnar)
and `indexes.pg.statements.where` (SQL).
"""

import json
import math
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Union

from .errors import InvalidInputError, MixedTypeFilterError
from .store import Filter

#: The derived fields every item has; they shadow metadata keys of the same name.
PREDICTED = "predicted"
NUMERIC_DERIVED = ("confidence", "margin", "entropy")
DERIVED = (PREDICTED, *NUMERIC_DERIVED)
OPERATORS = ("$eq", "$ne", "$in", "$nin", "$gt", "$gte", "$lt", "$lte", "$exists")
COMPARISONS = ("$gt", "$gte", "$lt", "$lte")
#: Limits of one filter: nesting of `$and` / `$or` / `$not`, conditions (one per operator), `$in`/`$nin` values.
MAX_DEPTH, MAX_CONDITIONS, MAX_VALUES = 8, 64, 1024

SUPPORTED = (
    'a filter is a JSON object of {"field": value} for equality or {"field": {"$op": value}} with $eq, $ne, $in, '
    "$nin, $gt, $gte, $lt, $lte or $exists, combined by $and / $or (a list of filters) and $not (a filter), where "
    "a field is a metadata key or predicted, confidence, margin or entropy and a value is a string, number, "
    "boolean or null"
)


@dataclass(frozen=True)
class Condition:
    """One operator on one field: `value` is a scalar, a tuple of scalars (`$in`, `$nin`) or a bool (`$exists`)."""

    field: str
    op: str
    value: Any


@dataclass(frozen=True)
class Combined:
    """`$and` (also a whole object's keys; none: everything), `$or` (at least one part) or `$not` (one part)."""

    op: str
    parts: tuple["Node", ...]


Node = Union[Condition, Combined]  # noqa: UP007 - a runtime alias of a forward-referenced union


def invalid(problem: str) -> InvalidInputError:
    """The error for a filter the service cannot read: what is wrong, then what is supported, in one sentence."""
    return InvalidInputError(f"{problem}; {SUPPORTED}")


def parse_filter(filter: Any, labels: Sequence[str] | None = None) -> Node | None:
    """The tree of `filter`, None for no filter (None or `{}`).

    Args:
        filter: the JSON filter.
        labels: the model's class names: `predicted` then also takes a label name (mapped to its index) and an
            index out of range is refused. Without them `predicted` takes class indexes only.

    Raises:
        InvalidInputError: a filter outside the grammar or its limits, with a message that says what is supported.
    """
    if filter is None:
        return None
    parser = _Parser(labels)
    node = parser.node(filter, 1)
    return None if node == Combined("$and", ()) else node


def check_filter(filter: Any) -> Filter | None:
    """`filter` if it is a readable filter, None for no filter (raises `InvalidInputError` otherwise)."""
    return filter if parse_filter(filter) is not None else None


def with_class_indexes(filter: Filter | None, labels: Sequence[str]) -> dict[str, Any] | None:
    """`filter` with the label names `predicted` takes replaced by class indexes, in the stores' canonical form."""
    node = parse_filter(filter, labels)
    return None if node is None else to_json(node)


def to_json(node: Node) -> dict[str, Any]:
    """The canonical JSON of a tree: `{"field": {"$op": value}}`, `{"$and"|"$or": [...]}`, `{"$not": {...}}`."""
    if isinstance(node, Condition):
        value = list(node.value) if isinstance(node.value, tuple) else node.value
        return {node.field: {node.op: value}}
    if node.op == "$not":
        return {"$not": to_json(node.parts[0])}
    return {node.op: [to_json(part) for part in node.parts]}


def conditions(node: Node | None) -> Iterator[Condition]:
    """The conditions of a tree, in the order they are written."""
    if isinstance(node, Condition):
        yield node
    elif node is not None:
        for part in node.parts:
            yield from conditions(part)


class _Parser:
    def __init__(self, labels: Sequence[str] | None) -> None:
        self.labels = labels
        self.num_conditions = self.num_values = 0

    def node(self, filter: Any, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise invalid(f"the filter nests $and / $or / $not more than {MAX_DEPTH} levels deep")
        if not isinstance(filter, dict):
            raise invalid(f"a filter must be a JSON object, not {_json_type(filter)}")
        parts = [self.entry(key, value, depth) for key, value in filter.items()]
        return parts[0] if len(parts) == 1 else Combined("$and", tuple(parts))

    def entry(self, key: Any, value: Any, depth: int) -> Node:
        if key in ("$and", "$or"):
            if not isinstance(value, list) or not value:
                raise invalid(f"{key} takes a non-empty list of filters")
            return Combined(key, tuple(self.node(part, depth + 1) for part in value))
        if key == "$not":
            return Combined("$not", (self.node(value, depth + 1),))
        if not isinstance(key, str) or key.startswith("$"):
            raise invalid(f"unknown filter operator {key!r} at the top of a filter (only $and, $or, $not go there)")
        is_operators = isinstance(value, dict) and bool(value) and all(str(op).startswith("$") for op in value)
        operators: dict[str, Any] = value if is_operators else {"$eq": value}
        parts = [self.condition(key, op, operand) for op, operand in operators.items()]
        return parts[0] if len(parts) == 1 else Combined("$and", tuple(parts))

    def condition(self, field: str, op: str, value: Any) -> Condition:
        self.num_conditions += 1
        if self.num_conditions > MAX_CONDITIONS:
            raise invalid(f"the filter has more than {MAX_CONDITIONS} conditions")
        if op not in OPERATORS:
            raise invalid(f"unknown filter operator {op!r} on field {field!r}")
        if op == "$exists":
            if not isinstance(value, bool):
                raise invalid(f"$exists on {field!r} takes true or false, not {_json_type(value)}")
            return Condition(field, op, value)
        if op in ("$in", "$nin"):
            if not isinstance(value, list):
                raise invalid(f"{op} on {field!r} takes a list of values, not {_json_type(value)}")
            self.num_values += len(value)
            if self.num_values > MAX_VALUES:
                raise invalid(f"the filter lists more than {MAX_VALUES} values in $in / $nin")
            return Condition(field, op, tuple(self.value(field, op, v) for v in value))
        return Condition(field, op, self.value(field, op, value))

    def value(self, field: str, op: str, value: Any) -> Any:
        if not (value is None or isinstance(value, str | bool | int | float)):
            raise invalid(f"{op} on {field!r} compares with {_json_type(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise invalid(f"{op} on {field!r} compares with a non-finite number")
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > sys.float_info.max:
            raise invalid(f"{op} on {field!r} compares with a number beyond the float64 range (about 1.8e308)")
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if op in COMPARISONS and not number:
            raise invalid(f"{op} on {field!r} compares numbers only, not {_json_type(value)}")
        if field == PREDICTED:
            return self.predicted(op, value, number)
        if field in NUMERIC_DERIVED and not number:
            raise invalid(f"the derived field {field!r} is a number, not {_json_type(value)}")
        return value

    def predicted(self, op: str, value: Any, number: bool) -> int | float:
        labels = self.labels
        if isinstance(value, str) and labels is not None and op not in COMPARISONS:
            if value not in labels:
                shown = ", ".join(labels[:20]) + (", ..." if len(labels) > 20 else "")
                raise invalid(f"{value!r} is not a class label of this index's model ({shown}) for {PREDICTED!r}")
            return labels.index(value)
        if op in COMPARISONS:
            return int(value) if isinstance(value, int) else float(value)
        if not number or not isinstance(value, int):
            raise invalid(f"{PREDICTED!r} takes a class index (an integer) or, through the service, a label name")
        if labels is not None and not 0 <= value < len(labels):
            raise invalid(f"class index {value} of {PREDICTED!r} is out of range 0..{len(labels) - 1}")
        return value


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    return "a number"


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


def compare(stored: Any, wanted: Any) -> int:
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


def compare_any(stored: Any, wanted: Sequence[Any]) -> int:
    """`compare` against a set of values: `_YES` if one equals `stored`, else `_OTHER_TYPE` if one is the other
    JSON type of it (`$in: [7, "7"]` skips nothing), else `_NO`."""
    results = [compare(stored, w) for w in wanted]
    return _YES if _YES in results else _OTHER_TYPE if _OTHER_TYPE in results else _NO


def _describe(value: Any) -> str:
    return f"the {'string' if isinstance(value, str) else 'number'} {json.dumps(value)}"


def mixed_type_error(key: str, wanted: Any, stored: Any, count: int) -> MixedTypeFilterError:
    """The error for an equality that would skip `count` items holding `stored`, the other JSON type of one of
    `wanted` (a value, or the values of `$in`)."""
    if isinstance(wanted, tuple):
        wanted = next(w for w in wanted if compare(stored, w) == _OTHER_TYPE)
    return MixedTypeFilterError(
        f"filter {{{json.dumps(key)}: {json.dumps(wanted)}}} matches {_describe(wanted)}, but {count} item(s) "
        f"hold {_describe(stored)} in {key!r}, which it would skip: the field holds both numbers and strings. "
        "Store one type (upsert those items again), or search once with each"
    )


def checks_types(condition: Condition) -> bool:
    """Whether `condition` refuses fields of mixed types (`MixedTypeFilterError`): the equalities on metadata."""
    return condition.op in ("$eq", "$in") and condition.field not in DERIVED
