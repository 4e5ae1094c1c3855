"""Filtered exact search on the FAISS store: a filter matching 1 % of N items against the same search unfiltered.

N seeded logits (C classes) go into the store's `FaissIndex` in this process with metadata `{"bucket": i % 100}`;
the same queries are searched with `{"bucket": 7}` (1 % of the items, evaluated columnar over the dictionary-encoded
metadata) and without a filter, under l2 and ce at T = 1. Every filtered answer is checked against numpy brute force
over the matching rows (the same top-k ids), and the ratio filtered / unfiltered time is printed per metric and
batch size, as the median of rounds timed back to back in this one run (goal: at most 2x).

    python bench/filtered.py [N] [C]           # defaults 1000000 100
"""

import service  # noqa: F401, I001 - first: it sets OpenBLAS's wait policy, which numpy reads when it loads

import logging
import statistics
import sys
import time

import numpy as np
from scipy.special import log_softmax

from indexes.faiss_index import FaissIndex

logger = logging.getLogger("bench.filtered")
K, ROUNDS = 10, 5


def _seconds(run: object, rounds: int = ROUNDS) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(n: int, c: int) -> None:
    rng = np.random.default_rng(0)
    vectors = (rng.standard_normal((n, c)) * 3).astype(np.float32)
    index = FaissIndex(c)
    for start in range(0, n, 100_000):
        stop = min(n, start + 100_000)
        index.upsert(
            [f"i{j}" for j in range(start, stop)],
            vectors[start:stop],
            [{"bucket": j % 100} for j in range(start, stop)],
        )
    rows = np.flatnonzero(np.arange(n) % 100 == 7)
    queries = (rng.standard_normal((16, c)) * 3).astype(np.float64)
    for metric in ("l2", "ce"):
        result = index.search(queries, K, metric=metric, filter={"bucket": 7})
        if metric == "l2":
            reference = ((vectors[rows][None, :, :] - queries[:, None, :]) ** 2).sum(axis=2)
        else:
            reference = -(
                np.exp(log_softmax(queries, axis=1)) @ log_softmax(vectors[rows].astype(np.float64), axis=1).T
            )
        expected = [[f"i{rows[j]}" for j in np.argsort(row, kind="stable")[:K]] for row in reference]
        got = [[hit.id for hit in hits] for hits in result.neighbors]
        assert got == expected, f"{metric}: filtered top-{K} differs from numpy brute force"
        for batch in (1, 16):
            chunk = queries[:batch]
            filtered = _seconds(lambda chunk=chunk, m=metric: index.search(chunk, K, metric=m, filter={"bucket": 7}))
            plain = _seconds(lambda chunk=chunk, m=metric: index.search(chunk, K, metric=m))
            logger.info(
                "N = %d, C = %d, %s, batch %d: filtered (1 %%) %.2f ms, unfiltered %.2f ms, ratio %.2f (exact: checked)",
                n, c, metric, batch, 1000 * filtered, 1000 * plain, filtered / plain,
            )  # fmt: skip


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000, int(sys.argv[2]) if len(sys.argv) > 2 else 100)
