"""Candidate search by one BLAS pass over the stored matrix: the bandwidth-bound alternative to FAISS's flat search.

FAISS answers a single query with a scalar kernel on one thread per query, about 3× slower than reading the
matrix at memory bandwidth (PERF-NOTES.md); a BLAS GEMV over the same float32 rows reads it once on every
thread. With the squared norms kept per row, `‖x − z‖² = ‖x‖² − 2 x·z + ‖z‖²` makes L2 that same GEMV. The
rows are scanned in blocks that stay in cache, each keeping its m best by `argpartition`, so a search
allocates O(block + m) whatever the number of rows. The values are float32, as FAISS's: callers re-rank the
candidates exactly.
"""

from typing import Literal

import numpy as np

#: Rows per block for one query (divided among the queries of a batch): the block's scores (1 MiB of float32)
#: stay in the L2 cache, and few BLAS calls means few thread wake-ups (which cost most on a busy machine).
BLOCK_ROWS = 1 << 18
#: Below this many queries a BLAS scan beats FAISS's flat search (which scans with one thread per query
#: until its own BLAS path takes over at `distance_compute_blas_threshold` = 20 queries).
MAX_SCAN_QUERIES = 20
#: A filter keeping at most this fraction of the rows is scanned by gathering those rows first.
GATHER_FRACTION = 0.25

Kind = Literal["ip", "l2"]


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

    Rows outside `mask` cost NaN, which no comparison keeps; positions left without an eligible row are -1.
    """
    best = [_Best(m) for _ in range(len(weights))]
    block_rows = max(4096, BLOCK_ROWS // len(weights))
    for start in range(0, len(matrix), block_rows):
        block = matrix[start : start + block_rows]
        cost = (block @ weights[0])[None, :] if len(weights) == 1 else weights @ block.T  # (q, b): GEMV or GEMM
        if norms is not None:
            cost += norms[start : start + len(block)]
        if mask is not None:
            cost[:, ~mask[start : start + len(block)]] = np.nan
        for query_best, row in zip(best, cost, strict=True):
            query_best.offer(row, start)
    results = [query_best.result() for query_best in best]
    return np.stack([r[0] for r in results]), np.stack([r[1] for r in results])


class _Best:
    """The m lowest costs offered so far for one query. A block's rows are compared with the m-th lowest cost
    held (one vectorised pass; for the first block, that block's own m-th lowest), so few reach the partial
    sort. NaN (a row outside the mask) is never kept."""

    def __init__(self, m: int) -> None:
        self.m = m
        self.threshold = np.float32(np.inf)
        self.costs: list[np.ndarray] = []
        self.positions: list[np.ndarray] = []
        self.held = 0

    def offer(self, cost: np.ndarray, start: int) -> None:
        """Consider `(b,)` costs of the rows from `start` on."""
        threshold = self.threshold
        if threshold == np.inf and cost.size > self.m:  # nothing held to compare with: this block's m-th lowest
            kth = np.partition(cost, self.m - 1)[self.m - 1]
            threshold = threshold if np.isnan(kth) else kth  # NaN: fewer than m eligible rows, keep them all
        keep = np.flatnonzero(cost <= threshold)
        if keep.size:
            self.costs.append(cost[keep])
            self.positions.append(keep + start)
            self.held += keep.size
            if self.held >= 2 * self.m or self.threshold == np.inf:
                self._shrink()

    def _shrink(self) -> None:
        costs = self.costs[0] if len(self.costs) == 1 else np.concatenate(self.costs)
        positions = self.positions[0] if len(self.positions) == 1 else np.concatenate(self.positions)
        if costs.size > self.m:
            best = np.argpartition(costs, self.m - 1)[: self.m]
            costs, positions = costs[best], positions[best]
        if costs.size == self.m:
            self.threshold = costs.max()
        self.costs, self.positions, self.held = [costs], [positions], costs.size

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """`(m,)` costs ascending and their positions, +inf and -1 where fewer than m rows are eligible."""
        if not self.costs:
            return np.full(self.m, np.inf, np.float32), np.full(self.m, -1, np.int64)
        self._shrink()
        order = np.argsort(self.costs[0], kind="stable")
        costs, positions = self.costs[0][order], self.positions[0][order]
        if costs.size < self.m:
            missing = self.m - costs.size
            costs = np.concatenate([costs, np.full(missing, np.inf, costs.dtype)])
            positions = np.concatenate([positions, np.full(missing, -1, np.int64)])
        return costs, positions
