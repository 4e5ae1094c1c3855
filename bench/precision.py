"""Cost of exactness: ms per single-query exact search for ce, js and l2 at C = 1000, and ce/l2, js/l2 per T.

Where the float32 certificate cannot prove the k-th value, a search widens its candidates and ends in a float64
comparison of every match; this shows where that happens (issue #33: ce and js at T >= 100), as ratios to l2
measured in one run, and the same for l2/l2_centered/cosine on a near-duplicate cluster at large norms (which the
l2 certificate sends to the float64 scan).

    python bench/precision.py                       # N = 20k, C = 1000, 20 queries
    python bench/precision.py --num-items 50000 --queries 10
"""

import argparse
import logging
import time

import numpy as np

from indexes.device import configure_cpu
from indexes.faiss_index import FaissIndex

logger = logging.getLogger("bench.precision")


def _ms_per_query(index: FaissIndex, queries: np.ndarray, metric: str, temperature: float) -> float:
    """Median ms of one-query exact searches (k = 10), after a warm-up that builds the metric's derived vectors."""
    index.search(queries[:1], 10, metric=metric, temperature=temperature)
    times = []
    for query in queries:
        began = time.perf_counter()
        index.search(query[None, :], 10, metric=metric, temperature=temperature)
        times.append(time.perf_counter() - began)
    return float(np.median(times)) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-items", type=int, default=20_000)
    parser.add_argument("--num-classes", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    configure_cpu(args.threads)
    rng = np.random.default_rng(0)
    c, n = args.num_classes, args.num_items
    centres = rng.standard_normal((c, c)) * 2.0 + np.eye(c) * 8.0  # classifier-like: one confident class each
    items = (centres[rng.integers(0, c, n)] + rng.standard_normal((n, c))).astype(np.float32)
    queries = centres[rng.integers(0, c, args.queries)] + rng.standard_normal((args.queries, c))
    index = FaissIndex(c)
    index.upsert([f"i{j}" for j in range(n)], items, [{} for _ in range(n)])
    logger.info("N = %d, C = %d, %d single-query exact searches, k = 10, %d threads", n, c, args.queries, args.threads)
    logger.info("| T | l2 ms | ce ms | js ms | ce/l2 | js/l2 |")
    logger.info("|---|---|---|---|---|---|")
    for temperature in (1.0, 100.0, 1000.0):
        ms = {m: _ms_per_query(index, queries, m, temperature) for m in ("l2", "ce", "js")}
        logger.info(
            "| %g | %.2f | %.2f | %.2f | %.1f | %.1f |",
            temperature, ms["l2"], ms["ce"], ms["js"], ms["ce"] / ms["l2"], ms["js"] / ms["l2"],
        )  # fmt: skip
    centre = rng.standard_normal(c) * 1e3
    cluster = (centre + rng.standard_normal((n, c)) * (1e-4 / np.sqrt(c))).astype(np.float32)
    near = FaissIndex(c)
    near.upsert([f"i{j}" for j in range(n)], cluster, [{} for _ in range(n)])
    cluster_queries = centre + rng.standard_normal((args.queries, c)) * (1e-4 / np.sqrt(c))
    spread_ms = _ms_per_query(index, queries, "l2", 1.0)
    logger.info("near-duplicate cluster (N items within 1e-4, norms ~3e4), ms and ratio to l2 on spread items:")
    for metric in ("l2", "l2_centered", "cosine"):
        ms = _ms_per_query(near, cluster_queries, metric, 1.0)
        logger.info("| %s | %.2f | %.1f |", metric, ms, ms / spread_ms)


if __name__ == "__main__":
    main()
