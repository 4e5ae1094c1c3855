"""A pgvector index sharded across PostgreSQL servers with PostgreSQL's own declarative partitioning.

The coordinator (`PG_URL`) holds the index's table as `PARTITION BY HASH (id)` with one partition per shard server;
each partition is a `postgres_fdw` foreign table over the shard's own `logitsearch.<index>` table, which has the
primary key, the GIN index on metadata and the rows. Every statement of the single-server store therefore runs on
the coordinator unchanged (PostgreSQL routes inserts to the owning shard and pushes filters and `ORDER BY <op>` down
to each), except two: an upsert cannot use `ON CONFLICT` on a partitioned table of foreign tables, so it goes
straight to the owning shards (`owners_statement` names each id's partition, `seqs_statement` hands out new seqs,
then per shard `shard_delete_statement` and one binary `shard_copy_statement`, about 3x the rate of the INSERTs
through the coordinator that `upsert_statements` / `insert_rows` still make when `DIRECT_SHARD_WRITES` is off);
and a nearest-neighbour query
names each partition in a `UNION ALL` of per-shard `ORDER BY ... LIMIT m` subqueries, which postgres_fdw sends whole
to each shard, instead of letting the Merge Append over the partitioned table pull every row of every shard
(`PARTITION BY` pushes the order down but not the limit; `tests/indexes/test_shards.py` shows both plans).

`seq` comes from a sequence on the coordinator, so insertion order and listing cursors are global. A write commits
the shards' transactions one after another (directly, or postgres_fdw when the coordinator commits; no two-phase
commit): a shard that dies in that instant can leave a write applied on the others only. A shard that is down makes the
index answer 503 naming it; the other indexes are untouched, and the next statement reconnects when it is back.
"""

import hashlib
from collections.abc import Sequence
from typing import Any

from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from ..errors import InvalidInputError
from .schema import SCHEMA, Layout, shard_table_statements


def server_name(url: str) -> str:
    """The foreign server of a shard URL on the coordinator: stable, and the same for every index on that shard."""
    parts = conninfo_to_dict(url)
    where = f"{parts.get('host', '')}:{parts.get('port', '5432')}/{parts.get('dbname', '')}"
    return f"logitsearch_shard_{hashlib.sha256(where.encode()).hexdigest()[:12]}"


def check_shards(shards: Sequence[str]) -> tuple[str, ...]:
    """Distinct PostgreSQL URLs of at least two servers.

    Raises:
        InvalidInputError: fewer than two, a repeat, or a URL psycopg cannot read.
    """
    values = tuple(shards)
    if len(values) < 2:
        raise InvalidInputError(f"shards lists the PostgreSQL URLs of at least 2 servers, got {len(values)}")
    try:
        names = [server_name(url) for url in values]
    except Exception as exc:  # psycopg's ProgrammingError for a malformed conninfo
        raise InvalidInputError(
            f"a shard URL is not a PostgreSQL URL ({exc}); give postgresql://USER@HOST:PORT/DB"
        ) from exc
    if len(set(names)) != len(names):
        raise InvalidInputError("shards lists the same server twice (same host, port and database)")
    return values


def partition(layout: Layout, i: int) -> sql.Identifier:
    """The coordinator's foreign table for shard `i` (index names may be 63 bytes long: `Layout.stem` is shorter)."""
    return sql.Identifier(SCHEMA, f"{layout.stem}#shard{i}")


def coordinator_statements(layout: Layout, shards: Sequence[str]) -> list[sql.Composed | sql.SQL]:
    """DDL on the coordinator: postgres_fdw, a foreign server and user mapping per shard (shared between indexes),
    the partitioned table, its seq sequence and one foreign partition per shard."""
    columns = sql.SQL(", ").join(
        sql.SQL("{} vector({}) NOT NULL").format(sql.Identifier(c.name), sql.Literal(c.dim)) for c in layout.columns
    )
    statements: list[sql.Composed | sql.SQL] = [sql.SQL("CREATE EXTENSION IF NOT EXISTS postgres_fdw")]
    for url in shards:
        statements += _server_statements(url)
    statements += [
        sql.SQL(
            'CREATE TABLE {} (id text COLLATE "C" NOT NULL, seq bigint NOT NULL, predicted integer NOT NULL, '
            "metadata jsonb NOT NULL, thumbnail bytea, {}) PARTITION BY HASH (id)"
        ).format(layout.table, columns),
        sql.SQL("CREATE SEQUENCE {}").format(sequence(layout)),
    ]
    statements += [_partition_statement(layout, i, len(shards), url) for i, url in enumerate(shards)]
    return statements


def replace_statements(layout: Layout, i: int, num_shards: int, url: str) -> list[sql.Composed | sql.SQL]:
    """DDL on the coordinator pointing partition `i` at the server `url` (a promoted standby, a restored copy):
    detached and dropped, then made again on that server's foreign server, in the caller's transaction."""
    return [
        sql.SQL("ALTER TABLE {} DETACH PARTITION {}").format(layout.table, partition(layout, i)),
        sql.SQL("DROP FOREIGN TABLE {}").format(partition(layout, i)),
        *_server_statements(url),
        _partition_statement(layout, i, num_shards, url),
    ]


def _server_statements(url: str) -> list[sql.Composed]:
    """The foreign server of `url` and the current user's mapping to it, unless they exist."""
    parts = conninfo_to_dict(url)
    server = sql.Identifier(server_name(url))
    options = {
        "host": str(parts.get("host", "127.0.0.1")),
        "port": str(parts.get("port", "5432")),
        "dbname": str(parts.get("dbname", "postgres")),
        "extensions": "vector",  # lets postgres_fdw send pgvector's operators to the shard
        "fetch_size": "10000",
    }
    user = {"user": str(parts.get("user", "postgres"))} | (
        {"password": str(parts["password"])} if parts.get("password") else {}
    )
    return [
        sql.SQL("CREATE SERVER IF NOT EXISTS {} FOREIGN DATA WRAPPER postgres_fdw OPTIONS ({})").format(
            server, _options(options)
        ),
        sql.SQL("CREATE USER MAPPING IF NOT EXISTS FOR CURRENT_USER SERVER {} OPTIONS ({})").format(
            server, _options(user)
        ),
    ]


def _partition_statement(layout: Layout, i: int, num_shards: int, url: str) -> sql.Composed:
    return sql.SQL(
        "CREATE FOREIGN TABLE {} PARTITION OF {} FOR VALUES WITH (MODULUS {}, REMAINDER {}) SERVER {} "
        "OPTIONS (schema_name {}, table_name {}, batch_size {})"
    ).format(
        partition(layout, i),
        layout.table,
        sql.Literal(num_shards),
        sql.Literal(i),
        sql.Identifier(server_name(url)),
        sql.Literal(SCHEMA),
        sql.Literal(layout.table_name),
        sql.Literal(str(BATCH_ROWS)),
    )


def shard_statements(layout: Layout) -> list[sql.Composed | sql.SQL]:
    """DDL on each shard: the extension, the schema and the index's own table (seq given by the coordinator)."""
    return [
        sql.SQL("CREATE EXTENSION IF NOT EXISTS vector"),
        sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(SCHEMA)),
        *shard_table_statements(layout),
    ]


def drop_statements(layout: Layout) -> list[sql.Composed | sql.SQL]:
    """DDL on the coordinator dropping the partitioned table (its foreign partitions with it) and its sequence."""
    return [
        sql.SQL("DROP TABLE IF EXISTS {}").format(layout.table),
        sql.SQL("DROP SEQUENCE IF EXISTS {}").format(sequence(layout)),
    ]


def sequence(layout: Layout) -> sql.Identifier:
    return sql.Identifier(SCHEMA, f"{layout.stem}#seq")


#: Rows a foreign partition sends its shard per round trip (postgres_fdw's `batch_size`), and at most per INSERT.
BATCH_ROWS = 500
#: Parameters one statement may bind (PostgreSQL's protocol allows 65,535).
_MAX_PARAMS = 60_000


def upsert_statements(layout: Layout) -> tuple[sql.Composed, sql.Composed]:
    """(stored seqs of ids = ANY(%s); delete them): the first half of a sharded upsert (`insert_rows` the rest)."""
    return (
        sql.SQL("SELECT id, seq FROM {} WHERE id = ANY(%s)").format(layout.table),
        sql.SQL("DELETE FROM {} WHERE id = ANY(%s)").format(layout.table),
    )


def insert_rows(layout: Layout, num_rows: int) -> sql.Composed:
    """One INSERT of `num_rows` rows, each: seq (None: the next one), id, predicted, metadata, thumbnail, vectors.

    One statement of many rows is what lets postgres_fdw send each shard its rows `BATCH_ROWS` at a time; an
    INSERT per row costs a round trip to a shard per row.
    """
    names = ["seq", "id", "predicted", "metadata", "thumbnail", *(c.name for c in layout.columns)]
    sequence_name = sql.Literal(f'{SCHEMA}."{layout.stem}#seq"')  # index names hold no quote (the catalog checks)
    row = sql.SQL("(COALESCE(%s, nextval({})), {})").format(
        sequence_name, sql.SQL(", ").join(sql.Placeholder() * (len(names) - 1))
    )
    return sql.SQL("INSERT INTO {} ({}) VALUES {}").format(
        layout.table, sql.SQL(", ").join(sql.Identifier(name) for name in names), sql.SQL(", ").join([row] * num_rows)
    )


def rows_per_insert(layout: Layout) -> int:
    """How many rows one `insert_rows` statement takes: `BATCH_ROWS`, fewer where the parameters would not fit."""
    return max(1, min(BATCH_ROWS, _MAX_PARAMS // (5 + len(layout.columns))))


def _options(values: dict[str, Any]) -> sql.Composed:
    return sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(k), sql.Literal(v)) for k, v in values.items())


def owners_statement(layout: Layout, num_shards: int) -> sql.Composed:
    """On the coordinator: the partition (shard number) of each id in %s (text[]), by PostgreSQL's own hash
    partitioning (`satisfies_hash_partition`), in the order given."""
    return sql.SQL(
        "SELECT (SELECT r FROM generate_series(0, {} - 1) AS r "
        "WHERE satisfies_hash_partition({}::regclass, {}, r, u.id)) FROM unnest(%s::text[]) WITH ORDINALITY AS u(id, n) "
        "ORDER BY u.n"
    ).format(sql.Literal(num_shards), sql.Literal(layout.table.as_string(None)), sql.Literal(num_shards))


def seqs_statement(layout: Layout) -> sql.Composed:
    """On the coordinator: %s new values of the index's seq sequence, increasing."""
    return sql.SQL("SELECT nextval({}) FROM generate_series(1, %s) ORDER BY 1").format(
        sql.Literal(sequence(layout).as_string(None))
    )


def shard_delete_statement(layout: Layout) -> sql.Composed:
    """On a shard: delete the ids in %s, returning the seqs they had (kept by a replaced item)."""
    return sql.SQL("DELETE FROM {} WHERE id = ANY(%s) RETURNING id, seq").format(layout.table)


def shard_copy_statement(layout: Layout) -> sql.Composed:
    """On a shard: COPY of rows (seq, id, predicted, metadata, thumbnail, vectors) in binary."""
    names = ["seq", "id", "predicted", "metadata", "thumbnail", *(c.name for c in layout.columns)]
    return sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        layout.table, sql.SQL(", ").join(sql.Identifier(name) for name in names)
    )
