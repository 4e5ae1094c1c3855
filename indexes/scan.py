"""Candidate search by one BLAS pass over the stored matrix with a compiled selection: faster than FAISS's flat search.

With the squared norms kept per row, `‖x − z‖² = ‖x‖² − 2 x·z + ‖z‖²` makes L2 an inner product, so the rows are
scored in blocks by BLAS: a GEMV for one query (reading the matrix once at memory bandwidth, where FAISS runs a
scalar kernel on one thread per query, about 3× slower), a GEMM for a batch (numpy's or torch's BLAS, whichever
`batch_gemm` measures faster on this machine, once per process), each query's scores in one contiguous row. Each
block's scores are then offered to each query's heap of its m best by a small compiled loop (numba): a vectorised
comparison with the heap's worst finds the rare runs of rows that enter, so selecting costs a fraction of the GEMM,
where FAISS's heap compares every score one at a time. A block is sized to stay in cache, so a search allocates
O(block + q·m) whatever the number of rows. The values are float32, as FAISS's: callers re-rank the candidates
exactly.
"""

import functools
import logging
import time
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

logger = logging.getLogger(__name__)

#: Scores per block (1 MiB of float32), whatever the batch size: the block stays in the L2 cache between the BLAS
#: call that writes it and the selection that reads it. One query thus reads 2^18 rows per BLAS call.
BLOCK_ROWS = 1 << 18
#: The fewest rows per block, so a large batch still makes BLAS calls big enough to run at full rate.
MIN_BLOCK_ROWS = 1024
#: Rows compared with a heap's worst at once: wide enough for the vector units, short enough that a run with a
#: row that enters costs little to walk again one row at a time.
RUN = 64
#: Below this many queries the scan always beats FAISS's flat search (which scans with one thread per query until
#: its own BLAS path takes over at `distance_compute_blas_threshold` = 20 queries) ...
MAX_SCAN_QUERIES = 20
#: ... and from this many stored values (rows × dimensions) on, it beats FAISS's BLAS path for batches too: below,
#: the heaps' updates (about m·ln(n/m) per query, on one thread where FAISS uses them all) outweigh the faster GEMM.
MIN_BATCH_SCAN_VALUES = 3_000_000
#: A filter keeping at most this fraction of the rows is scanned by gathering those rows first.
GATHER_FRACTION = 0.25

Kind = Literal["ip", "l2"]
#: Scores rows `[start, stop)` of the matrix against every query into `out` `(q, stop - start)`.
BlockGemm = Callable[[int, int, np.ndarray], object]


def prefers_scan(num_queries: int, num_rows: int, dim: int) -> bool:
    """Whether `scan_candidates` is the faster CPU kernel for this query shape (measured: `bench/search.py`)."""
    return num_queries < MAX_SCAN_QUERIES or num_rows * dim >= MIN_BATCH_SCAN_VALUES


def scan_candidates(
    matrix: np.ndarray, norms: np.ndarray | None, queries: np.ndarray, m: int, kind: Kind, mask: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Each query's m best rows of `matrix` by inner product or L2, in FAISS's conventions.

    Args:
        matrix: `(n, D)` float32, C-contiguous.
        norms: `(n,)` float32 squared row norms (needed for `"l2"`).
        queries: `(q, D)` float32.
        m: candidates per query, 1 <= m.
        kind: `"ip"` (largest inner product first) or `"l2"` (smallest squared distance first).
        mask: `(n,)` bool, the rows a query may return, or None for all.

    Returns:
        Scores `(q, m)` float32 (inner products descending, or squared distances ascending) and row positions
        `(q, m)` int64, -1 (with score -inf or +inf) where fewer than m rows are eligible.
    """
    rows = None
    if mask is not None and np.count_nonzero(mask) <= GATHER_FRACTION * len(mask):
        rows = np.flatnonzero(mask)
        matrix, norms, mask = matrix[rows], None if norms is None else norms[rows], None
    # Lower cost = better: the negated inner product, or the squared distance less the query's own norm.
    factor = np.float32(-1.0 if kind == "ip" else -2.0)
    weights = np.ascontiguousarray(queries * factor, dtype=np.float32)
    cost, positions = _best_in_blocks(matrix, norms if kind == "l2" else None, weights, m, mask)
    if rows is not None:
        positions = np.where(positions >= 0, rows[np.maximum(positions, 0)], -1)
    if kind == "ip":
        return -cost, positions
    query_norms = np.einsum("qd,qd->q", queries, queries, dtype=np.float32)
    return cost + query_norms[:, None], positions


def _best_in_blocks(
    matrix: np.ndarray, norms: np.ndarray | None, weights: np.ndarray, m: int, mask: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """The m lowest `norms + matrix @ weights.T` per query, ascending: costs `(q, m)` and positions `(q, m)`.

    Rows outside `mask` cost +inf, which no heap takes; positions left without an eligible row are -1.
    """
    num_queries = len(weights)
    heap_costs = np.full((num_queries, m), np.inf, np.float32)
    heap_rows = np.full((num_queries, m), -1, np.int64)
    block_rows = max(1, min(len(matrix), max(MIN_BLOCK_ROWS, BLOCK_ROWS // num_queries)))
    scores = np.empty((num_queries, block_rows), np.float32)
    zeros = np.zeros(block_rows if norms is None else 0, np.float32)
    gemm = None if num_queries == 1 else batch_gemm()(matrix, weights)
    offer = load_kernel()
    for start in range(0, len(matrix), block_rows):
        block = matrix[start : start + block_rows]
        out = scores if len(block) == block_rows else np.empty((num_queries, len(block)), np.float32)
        if gemm is None:
            np.matmul(block, weights[0], out=out[0])  # GEMV: the matrix read once
        else:
            gemm(start, start + len(block), out)
        offsets = zeros[: len(block)] if norms is None else norms[start : start + len(block)]
        if mask is not None:
            offsets = np.where(mask[start : start + len(block)], offsets, np.float32(np.inf))
        offer(out, offsets, start, heap_costs, heap_rows)
    order = np.argsort(heap_costs, axis=1, kind="stable")
    return np.take_along_axis(heap_costs, order, axis=1), np.take_along_axis(heap_rows, order, axis=1)


def numpy_gemm(matrix: np.ndarray, weights: np.ndarray) -> BlockGemm:
    """Blocks of `matrix` `(n, D)` scored against `weights` `(q, D)` by numpy's BLAS."""

    def run(start: int, stop: int, out: np.ndarray) -> object:
        return np.matmul(weights, matrix[start:stop].T, out=out)

    return run


def torch_gemm(matrix: np.ndarray, weights: np.ndarray) -> BlockGemm:
    """Blocks of `matrix` `(n, D)` scored against `weights` `(q, D)` by torch's BLAS (MKL on x86), without copies."""
    import torch

    rows, queries = torch.from_numpy(matrix), torch.from_numpy(weights)

    def run(start: int, stop: int, out: np.ndarray) -> object:
        return torch.mm(queries, rows[start:stop].T, out=torch.from_numpy(out))

    return run


@functools.cache
def batch_gemm() -> Callable[[np.ndarray, np.ndarray], BlockGemm]:
    """The faster of `numpy_gemm` and `torch_gemm` on this machine, timed once per process on a typical block.

    Which BLAS wins depends on the CPU and the libraries' builds (torch's MKL by 1.1–2.6× on an Intel Xeon with
    AVX-512, 64–256 queries of 10–1000 classes), so it is measured rather than assumed: the best of 10 calls each,
    about 20 ms once. Either gives the same candidates up to float32 rounding, which the exact re-rank absorbs.
    """
    rng = np.random.default_rng(0)
    matrix = rng.standard_normal((4096, 100), dtype=np.float32)
    weights = rng.standard_normal((64, 100), dtype=np.float32)
    out = np.empty((len(weights), len(matrix)), np.float32)
    runs = {gemm: gemm(matrix, weights) for gemm in (numpy_gemm, torch_gemm)}
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(2):  # each library in a run of its own: the other's idle threads may still hold a core
        for gemm, run in runs.items():
            run(0, len(matrix), out)
            for _ in range(5):
                began = time.perf_counter()
                run(0, len(matrix), out)
                best[gemm] = min(best[gemm], time.perf_counter() - began)
    chosen = min(best, key=best.__getitem__)
    logger.info(
        "batch scan GEMM: %s (numpy %.3f ms, torch %.3f ms for 64 queries × 4096 rows × 100)",
        chosen.__name__,
        best[numpy_gemm] * 1e3,
        best[torch_gemm] * 1e3,
    )
    return chosen


def _offer_rows(  # pragma: no cover - compiled by numba; a test runs this Python source against the compiled kernel
    scores: np.ndarray, offsets: np.ndarray, start: int, heap_costs: np.ndarray, heap_rows: np.ndarray
) -> None:
    """Offer the costs `scores[i, j] + offsets[j]` of rows `start + j` to each query's max-heap of its m lowest.

    Args:
        scores: `(q, b)` float32, C-contiguous.
        offsets: `(b,)` float32 added to every query's scores (squared norms, zeros, +inf for excluded rows).
        heap_costs: `(q, m)` float32 max-heaps (worst at 0), +inf where empty; updated in place.
        heap_rows: `(q, m)` int64 row positions of `heap_costs`, -1 where empty; updated in place.
    """
    num_queries, num_rows = scores.shape
    m = heap_costs.shape[1]
    for i in range(num_queries):
        row, costs, rows = scores[i], heap_costs[i], heap_rows[i]
        worst = costs[0]
        for run in range(0, num_rows, RUN):
            end = min(run + RUN, num_rows)
            enters = False
            # Unsigned indices: numba then proves them non-negative and vectorises the loop (signed ones get
            # wrap-around handling and turn every load into a gather).
            for j in range(np.uint64(run), np.uint64(end)):
                enters |= row[j] + offsets[j] < worst
            if not enters:
                continue
            for j in range(np.uint64(run), np.uint64(end)):
                cost = row[j] + offsets[j]
                if cost < worst:  # replace the worst and sift it down
                    position = 0
                    while True:
                        child = 2 * position + 1
                        if child >= m:
                            break
                        if child + 1 < m and costs[child + 1] > costs[child]:
                            child += 1
                        if costs[child] <= cost:
                            break
                        costs[position], rows[position] = costs[child], rows[child]
                        position = child
                    costs[position], rows[position] = cost, start + np.int64(j)
                    worst = costs[0]


def _compile(function: Callable[..., None]) -> Any:
    """`function` compiled for the arrays `_best_in_blocks` passes, cached on disk where the package is writable
    (or in the user's cache directory); compiled in memory, about a second per process, where neither is."""
    import numba

    signature = "void(float32[:, ::1], float32[::1], int64, float32[:, ::1], int64[:, ::1])"
    options: dict[str, Any] = {"nogil": True, "boundscheck": False}
    try:
        return numba.njit(signature, cache=True, **options)(function)
    except RuntimeError as exc:  # numba found no writable cache location
        logger.info("numba cannot cache the scan kernel (%s): compiling it in memory", exc)
        return numba.njit(signature, **options)(function)


@functools.cache
def load_kernel() -> Callable[[np.ndarray, np.ndarray, int, np.ndarray, np.ndarray], None]:
    """The compiled `_offer_rows`, compiled or loaded from numba's cache on the first call (numba's import and the
    load take a fraction of a second, a compile about a second): importing this module stays light."""
    kernel: Callable[[np.ndarray, np.ndarray, int, np.ndarray, np.ndarray], None] = _compile(_offer_rows)
    return kernel


def _offer(scores: np.ndarray, offsets: np.ndarray, start: int, heap_costs: np.ndarray, heap_rows: np.ndarray) -> None:
    """`_offer_rows`, compiled."""
    load_kernel()(scores, offsets, start, heap_costs, heap_rows)
