"""Exact top-k from any store's candidate search: float64 re-rank of the candidates, and a certificate.

A store finds candidates in float32 (FAISS, or SQL on pgvector) in a space where its own distance orders items
like the metric or bounds it (`indexes.metrics`); `exact_top` computes their true values in float64, keeps the
k best, and proves that no item left out could enter the top k (`candidate_lower_bound`),
fetching more candidates, or comparing every matching item, when it cannot. Every store answers exact searches
through this one function, so they return the same top k on the same data (ties aside).
"""

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .metrics import (
    CERTIFIED_METRICS,
    TIE_BROKEN_METRICS,
    Embedding,
    candidate_lower_bound,
    exact_distances,
    exact_matrix,
    order_breaking_ties,
)

logger = logging.getLogger(__name__)

#: Bound on the floats gathered at once when re-ranking candidates exactly.
RERANK_CHUNK = 1 << 23

#: Per query: the keys of its k nearest items and their exact distances, closest first.
TopK = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Candidates:
    """The m best candidates of each query in a store's candidate search.

    Attributes:
        scores: `(q, m)` the search's own float32 scores: inner products (larger = closer) for inner-product
            embeddings, squared distances for L2 ones (only the last column is used, by the certificate).
        keys: `(q, m)` int64 store keys of the candidates, best first; -1 past the last match.
        vectors: `(q, m, C)` the candidates' stored logits (any row where the key is -1).
        space: the embedding the scores come from where it is not the metric's usual one (`metrics.ce_embedding`,
            `metrics.sqrt_q_embedding`), else None.
        column_max: for `metrics.CE_CENTRED`, whose terms have both signs, the `(D,)` largest absolute entry of each
            column of the item vectors searched, which bounds the scores' float32 error; else None.
    """

    scores: np.ndarray
    keys: np.ndarray
    vectors: np.ndarray
    space: Embedding | None = None
    column_max: np.ndarray | None = None


class CandidateSource(Protocol):
    """One search's view of a store: the items matching its filter, under one metric and temperature.

    `exact` says whether `candidates` returns the true m best in its own float32 scores (a flat scan); an
    approximate search (HNSW) gets its candidates re-ranked exactly, without a certificate.
    """

    @property
    def exact(self) -> bool: ...

    def candidates(self, queries: np.ndarray, m: int) -> Candidates:
        """The m best candidates of each of `queries` `(q, C)` float64."""
        ...

    def num_matches(self) -> int:
        """How many items match the search's filter."""
        ...

    def matches(self) -> tuple[np.ndarray, np.ndarray]:
        """Every matching item: keys `(n,)` int64 and logits `(n, C)`."""
        ...


def exact_top(
    source: CandidateSource,
    queries: np.ndarray,
    k: int,
    metric: str,
    temperature: float,
    num_matches: int | None = None,
    m: int | None = None,
) -> list[TopK]:
    """Per query, the keys and exact distances of its k nearest matching items, closest first.

    Candidates are over-fetched (2k, at least k + 32) to absorb float32 rounding in the candidate search.
    A certificate decides (every metric, `candidate_lower_bound`): a query whose lower bound on every item not fetched is below
    its k-th exact value is searched again with four times as many candidates; past half of the matching
    items, they are all compared exactly instead. A query with fewer candidates than asked has them all.

    Args:
        source: the store's candidate search for this filter, metric and temperature.
        queries: `(q, C)` float64 logits.
        num_matches: `source.num_matches()` when known for free; else asked only if a certificate fails.
        m: candidates fetched per query at first (default 2k, at least k + 32).
    """
    top: list[TopK] = [(np.empty(0, np.int64), np.empty(0))] * len(queries)
    if num_matches == 0:
        return top
    pending, m = np.arange(len(queries)), m or k + max(k, 32)
    if num_matches is not None:
        m = min(num_matches, m)
    while pending.size:
        if num_matches is not None and 2 * m > num_matches and m < num_matches:
            _scan(source, queries, pending, k, metric, temperature, top)
            break
        complete = num_matches is not None and m >= num_matches
        unfinished: list[int] = []
        chunk = max(1, RERANK_CHUNK // (m * queries.shape[1]))
        for start in range(0, pending.size, chunk):
            rows = pending[start : start + chunk]
            unfinished.extend(_rerank(source, queries, rows, m, k, metric, temperature, complete, top))
        if unfinished:
            logger.debug(
                "%s at T=%g: no certificate for %d queries at %d candidates", metric, temperature, len(unfinished), m
            )
        if unfinished and num_matches is None:
            num_matches = source.num_matches()
        pending = np.array(unfinished, dtype=np.int64)
        m = 4 * m if num_matches is None else min(num_matches, 4 * m)
    return top


def scan_top(
    chunks: Iterable[tuple[np.ndarray, np.ndarray]], queries: np.ndarray, k: int, metric: str, temperature: float
) -> list[TopK]:
    """Per query, the keys and exact distances of its k nearest matching items, comparing every one of them, a
    chunk at a time (for a temperature no candidate space certifies, on a store that should not hold every row at
    once): only one chunk and each query's best so far (with the items tied at its k-th value) are held.

    Args:
        chunks: every matching item once, as keys `(n,)` int64 and logits `(n, C)`.
        queries: `(q, C)` float64 logits.
    """
    best: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = [
        (np.empty(0, np.int64), np.empty(0), np.empty((0, queries.shape[1]), np.float32)) for _ in queries
    ]
    for keys, items in chunks:
        if keys.size == 0:
            continue
        step = max(1, RERANK_CHUNK // keys.size)
        for start in range(0, len(queries), step):
            exact = exact_matrix(metric, queries[start : start + step], items, temperature)
            for i, values in enumerate(exact):
                held_keys, held_values, held_items = best[start + i]
                merged = np.concatenate([held_values, values])
                kth = np.partition(merged, min(k, merged.size) - 1)[min(k, merged.size) - 1]
                near, fresh = held_values <= kth, np.flatnonzero(values <= kth)  # the top k, and every tie with it
                best[start + i] = (
                    np.concatenate([held_keys[near], keys[fresh]]),
                    np.concatenate([held_values[near], values[fresh]]),
                    np.concatenate([held_items[near], items[fresh]]),
                )
    top: list[TopK] = []
    for query, (keys, values, items) in zip(queries, best, strict=True):
        order = order_breaking_ties(metric, values, query, items, temperature)[:k]
        top.append((keys[order], values[order]))
    return top


def _rerank(
    source: CandidateSource,
    queries: np.ndarray,
    rows: np.ndarray,
    m: int,
    k: int,
    metric: str,
    temperature: float,
    complete: bool,
    top: list[TopK],
) -> list[int]:
    """Re-rank the m candidates of `queries[rows]` exactly into `top`; returns the rows not certified."""
    found = source.candidates(queries[rows], m)
    real = found.keys >= 0
    exact = exact_distances(metric, queries[rows], found.vectors, temperature, best=k if real.all() else None)
    exact[~real] = np.inf
    order = np.argsort(exact, axis=1, kind="stable")[:, :k]
    done = np.ones(len(rows), dtype=bool)
    if source.exact and metric in CERTIFIED_METRICS and not complete:
        kth = np.take_along_axis(exact, order[:, -1:], axis=1)[:, 0]
        bound = candidate_lower_bound(
            metric, found.scores[:, -1], queries[rows], temperature, found.space, found.column_max
        )
        done = bound >= kth
        done |= found.keys[:, -1] < 0  # fewer than m matched: every match is a candidate
    if metric in TIE_BROKEN_METRICS:
        for i in np.flatnonzero(done):
            valid = found.keys[i] >= 0
            keep = order_breaking_ties(metric, exact[i, valid], queries[rows[i]], found.vectors[i, valid], temperature)
            top[rows[i]] = (found.keys[i, valid][keep[:k]], exact[i, valid][keep[:k]])
    else:  # the stable sort is the order: the matches (keys >= 0) come first, as the rows past the last are +inf
        keys, values = np.take_along_axis(found.keys, order, axis=1), np.take_along_axis(exact, order, axis=1)
        counts = np.count_nonzero(keys >= 0, axis=1)
        for i in np.flatnonzero(done):
            top[rows[i]] = (keys[i, : counts[i]], values[i, : counts[i]])
    unfinished: list[int] = rows[~done].tolist()
    return unfinished


def _scan(
    source: CandidateSource,
    queries: np.ndarray,
    pending: np.ndarray,
    k: int,
    metric: str,
    temperature: float,
    top: list[TopK],
) -> None:
    """Exact values against every matching item for the `pending` queries, written into `top`."""
    keys, items = source.matches()
    logger.debug("%s at T=%g: comparing all %d matches for %d queries", metric, temperature, keys.size, len(pending))
    for query, found in zip(
        pending.tolist(), scan_top([(keys, items)], queries[pending], k, metric, temperature), strict=True
    ):
        top[query] = found
