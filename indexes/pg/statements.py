"""Every SQL statement the pgvector store runs, by name: identifiers quoted by psycopg, values bound.

Nothing here is built from user input: table and column names come from the `Layout` (the index name is
validated by the catalog and quoted as an identifier anyway), and filter keys and values travel inside one
bound jsonb value. The statements are plain SQL that also runs unchanged on Citus (no joins across shards:
one `ORDER BY ... LIMIT` per query, which Citus pushes down to every shard and merges).
"""

from collections.abc import Sequence
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from ..filters import JSON_NUMBER_PATTERN, NUMERIC_DERIVED, PREDICTED, Condition, Node, spelled_number
from ..pages import Order
from .schema import REGISTRY, SCHEMA, Column, Layout
from .shards import partition


def _registry() -> sql.Identifier:
    return sql.Identifier(SCHEMA, REGISTRY)


def register() -> sql.Composed:
    """Record a new index: name, model, model_sha256, dim, temperatures, index_type, relation (an existing name
    fails)."""
    return sql.SQL(
        "INSERT INTO {} (name, model, model_sha256, dim, temperatures, index_type, relation) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s)"
    ).format(_registry())


def registry_row() -> sql.Composed:
    """model, model_sha256, dim, temperatures, index_type, relation, grid_bound of the index named %s (the last two
    read through jsonb: a replica of a registry made before those columns still answers)."""
    return sql.SQL(
        "SELECT model, model_sha256, dim, temperatures, index_type, to_jsonb(r) ->> 'relation', "
        "(to_jsonb(r) ->> 'grid_bound')::float8 FROM {} AS r WHERE name = %s"
    ).format(_registry())


def set_grid_bound() -> sql.Composed:
    """Record the grid graph's bound %s of the index named %s unless one is recorded; returns the one recorded (the
    row lock orders concurrent first writes: each gets the first one's)."""
    return sql.SQL("UPDATE {} SET grid_bound = COALESCE(grid_bound, %s) WHERE name = %s RETURNING grid_bound").format(
        _registry()
    )


def has_column() -> sql.SQL:
    """Whether the table %s.%s has a column named %s (which HNSW layout an index was made with)."""
    return sql.SQL(
        "SELECT EXISTS (SELECT FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n "
        "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s AND a.attname = %s AND NOT a.attisdropped)"
    )


def relation_of() -> sql.Composed:
    """The relation of the index named %s (no row: not registered; NULL: its table is named like it)."""
    return sql.SQL("SELECT relation FROM {} WHERE name = %s").format(_registry())


def unregister() -> sql.Composed:
    return sql.SQL("DELETE FROM {} WHERE name = %s").format(_registry())


def drop_table(layout: Layout) -> sql.Composed:
    return sql.SQL("DROP TABLE IF EXISTS {}").format(layout.table)


def upsert(layout: Layout) -> sql.Composed:
    """Insert or replace one row: id, predicted, metadata, thumbnail, then every vector column in layout order.

    A replaced row takes every value given, its thumbnail too (None: it has none), and keeps its `seq`."""
    names = ["id", "predicted", "metadata", "thumbnail", *(c.name for c in layout.columns)]
    identifiers = [sql.Identifier(name) for name in names]
    return sql.SQL("INSERT INTO {} ({}) VALUES ({}) ON CONFLICT (id) DO UPDATE SET {}").format(
        layout.table,
        sql.SQL(", ").join(identifiers),
        sql.SQL(", ").join(sql.Placeholder() * len(names)),
        sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(i) for i in identifiers[1:]),
    )


def delete(layout: Layout) -> sql.Composed:
    return sql.SQL("DELETE FROM {} WHERE id = %s").format(layout.table)


def get(layout: Layout) -> sql.Composed:
    return sql.SQL("SELECT id, logits, metadata FROM {} WHERE id = %s").format(layout.table)


def thumbnail(layout: Layout) -> sql.Composed:
    return sql.SQL("SELECT thumbnail FROM {} WHERE id = %s").format(layout.table)


def page(layout: Layout) -> sql.Composed:
    """Items in insertion order (`seq`: a replaced item keeps its place): LIMIT %s OFFSET %s."""
    return sql.SQL("SELECT id, logits, metadata FROM {} ORDER BY seq LIMIT %s OFFSET %s").format(layout.table)


def next_page(layout: Layout, where: sql.Composable, order: Order, after: bool) -> sql.Composed:
    """(id, logits, metadata, seq, value) of the rows after a cursor in `order` (`indexes.pages`); params: the
    temperature (derived orders), the where's values, the cursor's (value and) seq when `after`, the limit."""
    direction, compare = (sql.SQL("DESC"), "<") if order.descending else (sql.SQL("ASC"), ">")
    if not order.derived:
        later = sql.SQL(" AND seq {} %s").format(sql.SQL(compare)) if after else sql.SQL("")
        return sql.SQL(
            "SELECT id, logits, metadata, seq, NULL::float8 FROM {} WHERE {}{} ORDER BY seq {} LIMIT %s"
        ).format(layout.table, where, later, direction)
    later = sql.SQL(" WHERE (v, seq) {} (%s, %s)").format(sql.SQL(compare)) if after else sql.SQL("")
    return sql.SQL(
        "SELECT id, logits, metadata, seq, v FROM (SELECT id, logits, metadata, seq, {} AS v FROM {} WHERE {}) AS s{} "
        "ORDER BY v {}, seq {} LIMIT %s"
    ).format(derived(order.field), layout.table, where, later, direction, direction)


def groups(layout: Layout, where: sql.Composable, by_predicted: bool) -> sql.Composed:
    """(value, count) per value of a metadata key (params: key, key, the where's values) or of `predicted`."""
    if by_predicted:
        return sql.SQL("SELECT predicted, count(*) FROM {} WHERE {} GROUP BY 1").format(layout.table, where)
    return sql.SQL("SELECT metadata -> %s, count(*) FROM {} WHERE metadata ? %s AND {} GROUP BY 1").format(
        layout.table, where
    )


def delete_matching(layout: Layout, where: sql.Composable) -> sql.Composed:
    return sql.SQL("DELETE FROM {} WHERE {}").format(layout.table, where)


def count(layout: Layout, where: sql.Composable | None = None) -> sql.Composed:
    return sql.SQL("SELECT count(*) FROM {} WHERE {}").format(layout.table, where or sql.SQL("TRUE"))


def where(node: Node | None, temperature: float = 1.0) -> tuple[sql.Composable, tuple[Any, ...]]:
    """The SQL condition of a parsed filter and its bound values (`indexes.filters`): jsonb operators on
    `metadata`, the `predicted` column, the softmax statistics at `temperature` (`derived`); every part is true or
    false, never NULL, so that `NOT` stays exact."""
    if node is None:
        return sql.SQL("TRUE"), ()
    if isinstance(node, Condition):
        return _condition(node, temperature)
    parts = [where(part, temperature) for part in node.parts]
    params = tuple(value for _, values in parts for value in values)
    if node.op == "$not":
        return sql.SQL("(NOT {})").format(parts[0][0]), params
    if not parts:
        return sql.SQL("TRUE"), ()
    joined = sql.SQL(" AND " if node.op == "$and" else " OR ").join(condition for condition, _ in parts)
    return sql.SQL("({})").format(joined), params


# The softmax of one row at T as a set of `u = (z - max z) / T` (float8; 1 at the top class): each statistic is
# a scalar subquery over it, binding T once, computed as `indexes.masks` computes it in numpy, with the same floor
# at -700 (PostgreSQL's exp raises on underflow instead of returning 0; at a tiny T, inf - inf would be NaN).
_EXP = "exp(u)"
_SCALED = "SELECT GREATEST((x::float8 - max(x::float8) OVER ()) / %s, -700) AS u FROM unnest(logits::real[]) AS x"
_DERIVED = {
    "confidence": f"(SELECT 1.0 / sum({_EXP}) FROM ({_SCALED}) AS s)",
    "margin": f"(SELECT (1.0 - COALESCE((array_agg({_EXP} ORDER BY u DESC))[2], 0)) / sum({_EXP}) FROM ({_SCALED}) AS s)",
    "entropy": f"(SELECT ln(sum({_EXP})) - sum({_EXP} * u) / sum({_EXP}) FROM ({_SCALED}) AS s)",
}


def derived(field: str) -> sql.SQL:
    """The float8 expression of `confidence`, `margin` or `entropy` of a row's logits; binds the temperature once."""
    return sql.SQL(_DERIVED[field])  # a constant of this module, never user input


_COMPARISONS = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}


def _condition(condition: Condition, temperature: float) -> tuple[sql.Composable, tuple[Any, ...]]:
    field, op, value = condition.field, condition.op, condition.value
    if field in NUMERIC_DERIVED:
        return _on_derived(field, op, value, temperature)
    if field == PREDICTED:
        return _on_predicted(op, value)
    if op == "$exists":
        return sql.SQL("(metadata ? %s)" if value else "(NOT metadata ? %s)"), (field,)
    if op in _COMPARISONS:
        text = "COALESCE(jsonb_typeof(metadata -> %s) = 'number' AND metadata -> %s {} %s, false)"
        return sql.SQL(text).format(sql.SQL(_COMPARISONS[op])), (field, field, Jsonb(value))
    if op in ("$eq", "$ne"):
        # Containment finds candidates in the GIN index; the type check keeps [3] from matching 3.
        equal = sql.SQL("COALESCE(metadata @> %s AND jsonb_typeof(metadata -> %s) = %s, false)")
        params: tuple[Any, ...] = (Jsonb({field: value}), field, _json_type(value))
        return (equal if op == "$eq" else sql.SQL("(NOT {})").format(equal)), params
    inside = sql.SQL("COALESCE(metadata -> %s = ANY(%s::jsonb[]), false)")
    return (inside if op == "$in" else sql.SQL("(NOT {})").format(inside)), (field, [Jsonb(v) for v in value])


def _on_derived(field: str, op: str, value: Any, temperature: float) -> tuple[sql.Composable, tuple[Any, ...]]:
    """A softmax statistic always exists and is a number: as `_on_predicted`, on its float8 expression."""
    if op == "$exists":
        return sql.SQL("TRUE" if value else "FALSE"), ()
    if op in ("$in", "$nin"):  # the parser let numbers only through (`filters._Parser.value`)
        inside = sql.SQL("({} = ANY(%s::float8[]))").format(derived(field))
        return (inside if op == "$in" else sql.SQL("(NOT {})").format(inside)), (temperature, [float(v) for v in value])
    symbol = {"$eq": "=", "$ne": "<>", **_COMPARISONS}[op]
    return sql.SQL("({} {} %s)").format(derived(field), sql.SQL(symbol)), (temperature, float(value))


def _on_predicted(op: str, value: Any) -> tuple[sql.Composable, tuple[Any, ...]]:
    """`predicted` is a NOT NULL integer column: it always exists, and its comparisons are never NULL."""
    if op == "$exists":
        return sql.SQL("TRUE" if value else "FALSE"), ()
    if op in ("$in", "$nin"):
        text = "(predicted = ANY(%s::float8[]))" if op == "$in" else "(NOT predicted = ANY(%s::float8[]))"
        return sql.SQL(text), ([float(v) for v in value],)
    symbol = {"$eq": "=", "$ne": "<>", **_COMPARISONS}[op]
    return sql.SQL("(predicted {} %s)").format(sql.SQL(symbol)), (value,)


def _json_type(value: Any) -> str:
    """`jsonb_typeof` of a filter's scalar value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return "string" if isinstance(value, str) else "number"


def nearest(layout: Layout, column: Column, operator: str, where: sql.Composable) -> sql.Composed:
    """The m nearest rows to one query vector: (id, pgvector distance, logits, metadata); params: vector, where...,
    m — once per shard of a sharded index (`nearest_params`). The metadata comes along: one round trip less for the
    usual search, which needs nothing else.

    A sharded index asks each shard's foreign table for its own m nearest (postgres_fdw sends the ORDER BY and the
    LIMIT to the shard) and merges them, instead of a Merge Append that reads every row of every shard."""
    text = "SELECT id, {} {} %s AS score, logits, metadata FROM {} WHERE {} ORDER BY score LIMIT %s"
    name, op = sql.Identifier(column.name), sql.SQL(operator)
    if not layout.shards:
        return sql.SQL(text).format(name, op, layout.table, where)
    branches = [sql.SQL("(" + text + ")").format(name, op, partition(layout, i), where) for i in range(layout.shards)]
    return sql.SQL("SELECT * FROM ({}) AS shards ORDER BY score LIMIT %s").format(sql.SQL(" UNION ALL ").join(branches))


def nearest_params(layout: Layout, vector: Any, params: tuple[Any, ...], m: int) -> tuple[Any, ...]:
    """The values `nearest` binds, in order."""
    one = (vector, *params, m)
    return one if not layout.shards else (*(one * layout.shards), m)


def matches(layout: Layout, where: sql.Composable) -> sql.Composed:
    return sql.SQL("SELECT id, logits FROM {} WHERE {}").format(layout.table, where)


def matches_after(layout: Layout, where: sql.Composable) -> sql.Composed:
    """The next %s matching rows (id, logits) in id order after the id %s (keyset pagination on the primary key);
    params: where..., id, limit."""
    return sql.SQL("SELECT id, logits FROM {} WHERE ({}) AND id > %s ORDER BY id LIMIT %s").format(layout.table, where)


def metadata_of(layout: Layout) -> sql.Composed:
    return sql.SQL("SELECT id, metadata FROM {} WHERE id = ANY(%s)").format(layout.table)


def sample(layout: Layout) -> sql.Composed:
    """%s items (id, logits) in the order of their ids' md5: the same sample while the table does not change."""
    return sql.SQL("SELECT id, logits FROM {} ORDER BY md5(id) LIMIT %s").format(layout.table)


def other_types(layout: Layout, key: str, wanted: Sequence[Any]) -> list[tuple[sql.Composed, tuple[Any, ...]]]:
    """How many items hold, under `key`, the other JSON type of one of `wanted` (`7` and `"7"`) and none of them
    as it is, and one such value: a statement per kind (numbers held as strings, strings held as numbers).

    A number is looked for among the strings that spell it (a scan: no index knows them), a string among the
    numbers (the GIN index). A string spelling a number past float8's range ("1e999") equals no number the
    filters take (they refuse those), so it is skipped rather than cast (which would fail the statement).
    """
    numbers = [float(w) for w in wanted if isinstance(w, int | float) and not isinstance(w, bool)]
    strings = [w for w in wanted if isinstance(w, str)]
    spelled = [n for w in strings if (n := spelled_number(w)) is not None and n not in numbers]
    queries: list[tuple[sql.Composable, tuple[Any, ...]]] = []
    if numbers:
        condition = sql.SQL(
            "jsonb_typeof(metadata -> %s) = 'string' AND CASE WHEN (metadata ->> %s) ~ %s "
            "AND pg_input_is_valid(metadata ->> %s, 'float8') THEN (metadata ->> %s)::float8 = ANY(%s::float8[]) "
            "ELSE false END AND NOT (metadata ->> %s) = ANY(%s::text[])"
        )
        pattern = f"^{JSON_NUMBER_PATTERN}$"
        queries.append((condition, (key, key, pattern, key, key, numbers, key, strings)))
    if spelled:
        condition = sql.SQL("(metadata @> ANY(%s::jsonb[]))")
        queries.append((condition, ([Jsonb({key: n}) for n in spelled],)))
    return [
        (
            sql.SQL("SELECT count(*), (array_agg(metadata -> %s))[1] FROM {} WHERE {}").format(layout.table, condition),
            (key, *params),
        )
        for condition, params in queries
    ]
