"""Every SQL statement the pgvector store runs, by name: identifiers quoted by psycopg, values bound.

Nothing here is built from user input: table and column names come from the `Layout` (the index name is
validated by the catalog and quoted as an identifier anyway), and filter keys and values travel inside one
bound jsonb value. The statements are plain SQL that also runs unchanged on Citus (no joins across shards:
one `ORDER BY ... LIMIT` per query, which Citus pushes down to every shard and merges).
"""

from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from ..filters import JSON_NUMBER_PATTERN, PREDICTED, spelled_number
from ..store import Filter
from .schema import REGISTRY, SCHEMA, Column, Layout


def _registry() -> sql.Identifier:
    return sql.Identifier(SCHEMA, REGISTRY)


def register() -> sql.Composed:
    """Record a new index: name, model, model_sha256, dim, temperatures, index_type (an existing name fails)."""
    return sql.SQL(
        "INSERT INTO {} (name, model, model_sha256, dim, temperatures, index_type) VALUES (%s, %s, %s, %s, %s, %s)"
    ).format(_registry())


def registry_row() -> sql.Composed:
    """model, model_sha256, dim, temperatures, index_type of the index named %s."""
    return sql.SQL("SELECT model, model_sha256, dim, temperatures, index_type FROM {} WHERE name = %s").format(
        _registry()
    )


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


def count(layout: Layout, where: sql.Composable | None = None) -> sql.Composed:
    return sql.SQL("SELECT count(*) FROM {} WHERE {}").format(layout.table, where or sql.SQL("TRUE"))


def where(filter: Filter | None) -> tuple[sql.Composable, tuple[Any, ...]]:
    """The condition of an exact-match filter: jsonb containment of its fields, `predicted` as a column."""
    if not filter:
        return sql.SQL("TRUE"), ()
    conditions: list[sql.Composable] = []
    params: list[Any] = []
    fields = {key: value for key, value in filter.items() if key != PREDICTED}
    if fields:
        conditions.append(sql.SQL("metadata @> %s"))
        params.append(Jsonb(fields))
    if PREDICTED in filter:
        conditions.append(sql.SQL("predicted = %s"))
        params.append(filter[PREDICTED])
    return sql.SQL(" AND ").join(conditions), tuple(params)


def nearest(layout: Layout, column: Column, operator: str, where: sql.Composable) -> sql.Composed:
    """The m nearest rows to one query vector: (id, pgvector distance, logits, metadata); params: vector, where...,
    m. The metadata comes along: one round trip less for the usual search, which needs nothing else."""
    return sql.SQL("SELECT id, {} {} %s AS score, logits, metadata FROM {} WHERE {} ORDER BY score LIMIT %s").format(
        sql.Identifier(column.name), sql.SQL(operator), layout.table, where
    )


def matches(layout: Layout, where: sql.Composable) -> sql.Composed:
    return sql.SQL("SELECT id, logits FROM {} WHERE {}").format(layout.table, where)


def metadata_of(layout: Layout) -> sql.Composed:
    return sql.SQL("SELECT id, metadata FROM {} WHERE id = ANY(%s)").format(layout.table)


def sample(layout: Layout) -> sql.Composed:
    """%s items (id, logits) in the order of their ids' md5: the same sample while the table does not change."""
    return sql.SQL("SELECT id, logits FROM {} ORDER BY md5(id) LIMIT %s").format(layout.table)


def other_types(layout: Layout, key: str, wanted: Any) -> tuple[sql.Composed, tuple[Any, ...]] | None:
    """How many items hold `wanted` under `key` as the other JSON type (`7` and `"7"`), and one such value.

    None when no item can: `wanted` is neither a number nor a string spelling one. A number is looked for among
    the strings that spell it (a scan: no index knows them), a string among the numbers (the GIN index).
    """
    if isinstance(wanted, int | float) and not isinstance(wanted, bool):
        condition = sql.SQL(
            "jsonb_typeof(metadata -> %s) = 'string' AND CASE WHEN (metadata ->> %s) ~ %s "
            "THEN (metadata ->> %s)::float8 = %s ELSE false END"
        )
        params: tuple[Any, ...] = (key, key, f"^{JSON_NUMBER_PATTERN}$", key, float(wanted))
    elif isinstance(wanted, str) and (number := spelled_number(wanted)) is not None:
        condition, params = sql.SQL("metadata @> %s"), (Jsonb({key: number}),)
    else:
        return None
    statement = sql.SQL("SELECT count(*), (array_agg(metadata -> %s))[1] FROM {} WHERE {}").format(
        layout.table, condition
    )
    return statement, (key, *params)
