"""Exact divergence search and divergence matrices against brute-force baselines, as ratios from one run.

1. Exact CE and KL top-k (`FaissIndex.search(metric="ce" | "kl")`) against numpy brute force over the same
   stored log-softmax: per query `-(log_q * p).sum(1)` + argpartition (the obvious way), and the batched
   `log_q @ P.T` (the strongest plain-numpy baseline). Results are checked to agree.
2. Pairwise divergence matrices (`compute_divergence(..., pairwise=True)`) against a per-pair loop over
   scipy (`rel_entr`, `jensenshannon`, `xlogy`), for every measure.

    python bench/divergence.py                  # N = 1M, C = 100, 100 queries; 1000 x 1000 matrices
    python bench/divergence.py --num-items 200000 --loop-rows 100
"""

import argparse
import logging
import os
import time
from collections.abc import Callable

import torch  # before faiss: both bundle OpenMP, and this order is the tested one

# isort: split
import numpy as np
from scipy.spatial.distance import jensenshannon
from scipy.special import log_softmax, rel_entr, softmax, xlogy

from indexes.device import configure_cpu
from indexes.divergences import MEASURES, compute_divergence
from indexes.faiss_index import FaissIndex

logger = logging.getLogger("bench.divergence")

PAIR_FUNCTIONS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "ce": lambda p, q: float(-xlogy(p, q).sum()),
    "kl": lambda p, q: float(rel_entr(p, q).sum()),
    "kl_reverse": lambda p, q: float(rel_entr(q, p).sum()),
    "js": lambda p, q: float(jensenshannon(p, q) ** 2),
    "tri": lambda p, q: float(np.sum((p - q) ** 2 / (p + q))),
    "euclidean": lambda a, b: float(np.linalg.norm(a - b)),
}


def timed(run: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = run()
    return time.perf_counter() - start, result


def bench_search(num_items: int, num_classes: int, num_queries: int, k: int) -> list[str]:
    rng = np.random.default_rng(0)
    vectors = (rng.standard_normal((num_items, num_classes)) * 3).astype(np.float32)
    queries = (rng.standard_normal((num_queries, num_classes)) * 3).astype(np.float32)
    index = FaissIndex(num_classes)
    index.upsert([str(i) for i in range(num_items)], vectors, [{}] * num_items)
    log_q = log_softmax(vectors, axis=1).astype(np.float32)
    p = softmax(queries, axis=1).astype(np.float32)

    def obvious() -> np.ndarray:  # cross-entropy of every item, then its k smallest, one query at a time
        return np.stack([np.argpartition(-(log_q * row).sum(1), k)[:k] for row in p])

    def batched() -> np.ndarray:
        return np.argpartition(-(p @ log_q.T), k, axis=1)[:, :k]

    t_obvious, _ = timed(obvious)
    t_batched, top = timed(batched)
    rows = []
    for metric in ("ce", "kl"):
        t_build, _ = timed(lambda m=metric: index.search(queries[:1], k, metric=m))  # builds the log-softmax index
        t_search, result = timed(lambda m=metric: index.search(queries, k, metric=m))
        ours = [{int(n.id) for n in hits} for hits in result.neighbors]  # type: ignore[attr-defined]
        agree = np.mean([len(a & set(b.tolist())) / k for a, b in zip(ours, top, strict=True)])
        per_query = t_search / num_queries
        rows.append(
            f"| {metric} top-{k} | {per_query * 1e3:.2f} | {t_obvious / num_queries * 1e3:.1f} | "
            f"{t_obvious / t_search:.0f}x | {t_batched / num_queries * 1e3:.2f} | "
            f"{t_batched / t_search:.1f}x | {t_build:.2f} | {agree:.3f} |"
        )
    return rows


def bench_matrices(n: int, num_classes: int, loop_rows: int) -> list[str]:
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((n, num_classes)) * 3, rng.standard_normal((n, num_classes)) * 3
    p, q = softmax(a, axis=1), softmax(b, axis=1)
    rows = []
    for measure in MEASURES:
        t_ours, matrix = timed(lambda m=measure: compute_divergence(a, b, measure=m, pairwise=True))
        pair = PAIR_FUNCTIONS[measure]
        x, y = (a, b) if measure == "euclidean" else (p, q)
        t_loop, loop = timed(lambda f=pair, x=x, y=y: [[f(x[i], y[j]) for j in range(n)] for i in range(loop_rows)])
        t_loop_full = t_loop * n / loop_rows  # the loop's cost is the same for every row
        error = float(np.max(np.abs(np.asarray(loop) - np.asarray(matrix)[:loop_rows])))
        rows.append(
            f"| {measure} | {t_ours * 1e3:.0f} | {t_loop_full:.2f} | {t_loop_full / t_ours:.0f}x | {error:.1e} |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-items", type=int, default=1_000_000)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--num-queries", type=int, default=100)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--matrix-size", type=int, default=1000)
    parser.add_argument("--loop-rows", type=int, default=1000, help="rows of the scipy loop timed (then scaled)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    configure_cpu(args.threads)
    torch.set_num_threads(args.threads)
    search = [
        "| search | ours ms/query | numpy obvious ms/query | speed-up | numpy batched GEMM ms/query | "
        "speed-up | index build s | top-k agreement |",
        "|---|---|---|---|---|---|---|---|",
    ]
    search += bench_search(args.num_items, args.classes, args.num_queries, args.k)
    logger.info(
        "N = %d, C = %d, %d queries, %d threads\n%s",
        args.num_items,
        args.classes,
        args.num_queries,
        args.threads,
        "\n".join(search),
    )
    matrices = ["| measure | ours ms | scipy loop s | speed-up | max abs difference |", "|---|---|---|---|---|"]
    matrices += bench_matrices(args.matrix_size, args.classes, args.loop_rows)
    logger.info(
        "%d x %d matrices, C = %d (scipy loop timed on %d rows, scaled)\n%s",
        args.matrix_size,
        args.matrix_size,
        args.classes,
        args.loop_rows,
        "\n".join(matrices),
    )


if __name__ == "__main__":
    main()
