"""In-memory FAISS flat L2 index with string ids and metadata, on CPU or mirrored on a GPU."""

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch  # noqa: F401 - before faiss: both bundle OpenMP, and this order is the tested one

# isort: split
import faiss
import numpy as np

from . import ann
from .ann import (
    RECALL_K,
    AnnOptions,
    Approximate,
    Calibration,
    LabelMap,
    Plan,
    Structure,
    calibration_queries,
    family_of,
    recall_at_10,
    row_hashes,
)
from .columns import GrowableArray, MappedRows, MetadataColumn
from .derived import DerivedIndexCache
from .errors import IndexError_, ItemNotFoundError
from .facets import Facets, collect
from .masks import derived_values, match_filter, predicted_classes
from .metrics import (
    EMBEDDINGS,
    Embedding,
    ce_embedding,
    exact_distances,
    order_breaking_ties,
    sqrt_q_embedding,
)
from .pages import Cursor, Order, Page, cursor_after, next_rows
from .rerank import Candidates, TopK, exact_top
from .scan import Kind, prefers_scan, scan_candidates
from .store import Filter, Item, Metadata, QueryHits, SearchResult

logger = logging.getLogger(__name__)

#: Largest k a GPU flat index answers; larger k is served from the CPU copy.
GPU_MAX_K = ann.GPU_MAX_K


#: A filtered search on an approximate index matching at most this share of the items is answered exactly: a scan
#: of so few rows is fast, and a graph walk would pass over mostly excluded items.
EXACT_FILTER_FRACTION = 0.05
#: (field, T) orders whose values a listing keeps for its next pages (each n float64).
ORDER_CACHE = 4


#: How candidates are found: `"auto"` picks per query shape; `"faiss"` and `"scan"` force one kernel.
Kernel = Literal["auto", "faiss", "scan"]


@dataclass(frozen=True)
class _Selection:
    """Rows a search may return: their mask (None: all), how many there are, and FAISS parameters restricting a
    search to them with the bitmap the selector points into (kept alive with them)."""

    mask: np.ndarray | None
    num_matches: int
    params: Any = None
    bitmap: np.ndarray | None = None


class FaissIndex:
    """Exact L2 index over logits, addressed by string ids, with a JSON metadata dict per item.

    The CPU `IndexFlatL2` is the storage of record: row `i` holds the vector of `ids[i]`. On a GPU a
    `GpuIndexFlatL2` mirrors it for unfiltered searches with `k <= GPU_MAX_K`. Deletes move the last row
    into the hole, so rows stay dense; the insertion order is kept apart from the rows, in the order of the
    `ids -> row` dict (a new id goes last, a replaced one keeps its place, a deleted one leaves it). Not
    thread-safe: `DurableIndex` serialises access.

    On CPU, candidates come from one BLAS pass over the rows with a compiled selection (`indexes.scan`, with the
    squared norms kept per row) for the query shapes where it is faster (`prefers_scan`: small batches, and any
    batch over a few million stored values), else from FAISS's flat search; both are re-ranked exactly, so
    either returns the same top k.

    With `originals`, the rows live in that file, memory-mapped (`columns.MappedRows`), instead of FAISS's buffer:
    resident memory is then what searches read (an approximate index's structures, and the rows its re-rank
    reads), and l2 candidates come from the BLAS scan. With `rerank_copy` `"float16"`, a float16 copy of the rows
    in memory serves the re-rank of approximate searches, and the k answers' distances are computed again from the
    originals, so they stay exact.

    Args:
        dim: vector length (the model's number of classes).
        gpu_resources: a `faiss.StandardGpuResources` to put the search mirror on the GPU, or None for CPU.
        kernel: `"auto"` (per query shape), or `"faiss"` / `"scan"` to force one candidate kernel.
        originals: a file to keep the rows in (memory-mapped), or None to keep them in memory.
        rerank_copy: `"float16"` to re-rank approximate searches from a float16 copy, or None.
    """

    def __init__(
        self,
        dim: int,
        gpu_resources: Any | None = None,
        kernel: Kernel = "auto",
        originals: Path | None = None,
        rerank_copy: str | None = None,
    ) -> None:
        self.dim = dim
        self.kernel = kernel
        self._rows = MappedRows(originals, dim) if originals is not None else None
        self._cpu = faiss.IndexFlatL2(dim) if self._rows is None else None  # the rows, unless they are in a file
        self._half = GrowableArray(np.float16, (dim,)) if rerank_copy == "float16" else None
        self._norms = GrowableArray(np.float32)  # squared L2 norm of each row, for the BLAS scan
        self._seqs = GrowableArray(np.int64)  # each row's seq: its place in insertion order (`indexes.pages`)
        self._next_seq = 0  # the seq of the next new id; never given twice
        self._gpu_resources = gpu_resources
        self._gpu = faiss.GpuIndexFlatL2(gpu_resources, dim) if gpu_resources is not None else None
        self._ids: list[str] = []
        self._positions: dict[str, int] = {}
        self._metadata = MetadataColumn()
        self._listed_ids: list[str] | None = None  # insertion order, cached for `list` until the next write
        self._version = 0  # bumped on every write; derived indexes built at an older version are rebuilt
        self._centred_max: tuple[int, float] | None = None  # (version, largest |z - mean z| of any stored row)
        # (field, T) -> (version, (n,) values of every row): listings page through them without recomputing
        self._orders: OrderedDict[tuple[str, float], tuple[int, np.ndarray]] = OrderedDict()
        self._orders_lock = threading.Lock()
        self._derived = DerivedIndexCache(gpu_resources=gpu_resources)
        self._view: np.ndarray | None = None  # `vectors`, until FAISS's buffer changes
        self._approximate: Approximate | None = None  # candidate structures of an approximate index, once built

    @property
    def device(self) -> str:
        return "cpu" if self._gpu is None else "cuda"

    @property
    def index_type(self) -> str:
        return "IndexFlatL2" if self._gpu is None else "GpuIndexFlatL2"

    @property
    def on_gpu(self) -> bool:
        return self._gpu is not None

    @property
    def gpu_resources(self) -> Any | None:
        """The `faiss.StandardGpuResources` of an index on a GPU, else None."""
        return self._gpu_resources

    @property
    def vectors(self) -> np.ndarray:
        """`(n, dim)` float32 view of the stored logits (FAISS's own buffer, or the mapped file; invalid after the
        next write)."""
        view = self._view
        if view is None:  # built whole before it is published: concurrent searches read it
            if self._rows is not None:
                view = self._rows.values
            elif self._cpu is not None and self._cpu.ntotal:
                view = faiss.rev_swig_ptr(self._cpu.get_xb(), self._cpu.ntotal * self.dim).reshape(-1, self.dim)
            else:
                view = np.empty((0, self.dim), dtype=np.float32)
            self._view = view
        return view

    @property
    def originals_file(self) -> Path | None:
        """The file the rows are memory-mapped from, or None when they are in memory."""
        return self._rows.path if self._rows is not None else None

    @property
    def rerank_copy(self) -> str | None:
        """`"float16"` when approximate searches re-rank from a float16 copy of the rows, else None."""
        return "float16" if self._half is not None else None

    @property
    def ids(self) -> list[str]:
        return self._ids

    @property
    def metadata(self) -> list[Metadata]:
        """One object per row (shared between rows with equal metadata: do not mutate)."""
        return self._metadata.to_list()

    def count(self) -> int:
        return len(self._ids)

    @property
    def seqs(self) -> np.ndarray:
        """`(n,)` int64 seq of each row (`indexes.pages`): ascending seq is insertion order."""
        return self._seqs.values

    @property
    def next_seq(self) -> int:
        return self._next_seq

    def matching_rows(self, filter: Filter | None, temperature: float = 1.0) -> np.ndarray:
        """`(m,)` int64 rows matching `filter` (derived fields at `temperature`), ascending; every row without one."""
        if not filter or self.count() == 0:
            return np.arange(self.count(), dtype=np.int64)
        mask = match_filter(filter, self._metadata.distinct, self.vectors, self._metadata.codes, temperature)
        return np.flatnonzero(mask).astype(np.int64)

    def page(self, filter: Filter | None, order: Order, after: Cursor | None, limit: int, temperature: float) -> Page:
        """The `limit` items after `after` in `order` among those matching `filter` (`indexes.pages`)."""
        rows = self.matching_rows(filter, temperature)
        seqs = self._seqs.values[rows]
        values = self._order_values(order.field, temperature)[rows] if order.derived else None
        chosen, more = next_rows(seqs, values, order, after, limit)
        items = [self._item(int(row)) for row in rows[chosen]]
        return Page(items, cursor_after(seqs, values, chosen) if more else None, len(rows))

    def _order_values(self, field: str, temperature: float) -> np.ndarray:
        """`(n,)` values of a derived field of every row at T, computed once per version of the data for the
        `ORDER_CACHE` most recent (field, T): a listing's next pages cost O(n), not O(n·C) each."""
        key = (field, temperature)
        with self._orders_lock:
            cached = self._orders.get(key)
            if cached is None or cached[0] != self._version:
                cached = (self._version, derived_values(field, self.vectors, temperature))
                self._orders[key] = cached
            self._orders.move_to_end(key)
            while len(self._orders) > ORDER_CACHE:
                self._orders.popitem(last=False)
            return cached[1]

    def facets(self, filter: Filter | None, group_by: str | None, temperature: float, limit: int) -> Facets:
        """How many items match `filter`, and per value of `group_by` (a metadata key or `predicted`) how many hold it."""
        rows = self.matching_rows(filter, temperature)
        if group_by is None:
            return Facets(len(rows))
        if group_by == "predicted":
            classes = np.bincount(predicted_classes(self.vectors[rows]), minlength=self.dim)
            return collect(((c, int(n)) for c, n in enumerate(classes)), len(rows), 0, limit)
        per_object = np.bincount(self._metadata.codes[rows], minlength=len(self._metadata.distinct))
        present = [
            (m[group_by], int(n)) for m, n in zip(self._metadata.distinct, per_object, strict=True) if group_by in m
        ]
        return collect(present, len(rows), len(rows) - sum(n for _, n in present), limit)

    def insertion_rows(self) -> np.ndarray | None:
        """`(n,)` int64 row positions in insertion order, or None when the rows are in that order already."""
        rows = np.fromiter(self._positions.values(), dtype=np.int64, count=len(self._positions))
        return None if np.array_equal(rows, np.arange(len(rows))) else rows

    def __contains__(self, item_id: str) -> bool:
        return item_id in self._positions

    def upsert(self, ids: Sequence[str], vectors: np.ndarray, metadata: Sequence[Metadata]) -> int:
        """Insert new ids and overwrite existing ones.

        Args:
            ids: distinct, already validated ids.
            vectors: `(n, dim)` float32, C-contiguous, finite.
            metadata: one JSON object per id.

        Returns:
            The number of items written (`len(ids)`).
        """
        new_rows: list[int] = []
        replaced_positions: list[int] = []
        stored = self.vectors
        for row, (item_id, meta) in enumerate(zip(ids, metadata, strict=True)):
            position = self._positions.get(item_id)
            if position is None:
                new_rows.append(row)
            else:
                stored[position] = vectors[row]
                if self._half is not None:
                    self._half.values[position] = vectors[row]
                self._norms.values[position] = _squared_norms(vectors[row : row + 1])[0]
                self._metadata.set(position, meta)
                replaced_positions.append(position)
        replaced = bool(replaced_positions)
        if self._approximate is not None:
            if replaced:
                self._approximate.labels.replaced(replaced_positions)
            if new_rows:
                self._approximate.labels.appended(len(new_rows))
        if new_rows:
            start = len(self._ids)
            added = np.ascontiguousarray(vectors[new_rows])
            if self._rows is not None:
                self._rows.extend(added)
            elif self._cpu is not None:
                self._cpu.add(added)
            if self._half is not None:
                self._half.extend(added)
            self._view = None
            self._norms.extend(_squared_norms(added))
            self._seqs.extend(np.arange(self._next_seq, self._next_seq + len(new_rows), dtype=np.int64))
            self._next_seq += len(new_rows)
            if self._gpu is not None and not replaced:
                self._gpu.add(added)
            for offset, row in enumerate(new_rows):
                self._positions[ids[row]] = start + offset
                self._ids.append(ids[row])
            self._metadata.extend([metadata[row] for row in new_rows])
            self._listed_ids = None
        self._version += 1
        if replaced:
            self._sync_gpu()
        return len(ids)

    def delete(self, item_id: str) -> None:
        """Remove one item; raises `ItemNotFoundError` if it is not stored."""
        if item_id not in self._positions:
            raise ItemNotFoundError(f"no item with id {item_id!r}")
        self.delete_many([item_id])

    def delete_many(self, item_ids: Sequence[str]) -> int:
        """Remove the stored items among `item_ids` (distinct); returns how many there were.

        Each one's row takes the last row's values, as a single delete does; FAISS's buffer is cut once and the
        GPU mirror uploaded once, so deleting k items costs O(k·C + n) however large k is.
        """
        stored = self.vectors
        removed = 0
        for item_id in item_ids:
            position = self._positions.pop(item_id, None)
            if position is None:
                continue
            last = len(self._ids) - 1
            if self._approximate is not None:
                self._approximate.labels.deleted(position, last)
            if position != last:
                stored[position] = stored[last]
                moved = self._ids[last]
                self._ids[position] = moved
                self._positions[moved] = position
            self._ids.pop()
            self._metadata.remove_moving_last(position)
            self._norms.remove_moving_last(position)
            self._seqs.remove_moving_last(position)
            if self._half is not None:
                self._half.remove_moving_last(position)
            removed += 1
        if removed:
            if self._rows is not None:
                self._rows.truncate(len(self._ids))
            elif self._cpu is not None:
                self._cpu.remove_ids(faiss.IDSelectorRange(len(self._ids), len(self._ids) + removed))
            self._view = None
            self._listed_ids = None
            self._version += 1
            self._sync_gpu()
        return removed

    def get(self, item_id: str) -> Item:
        position = self._positions.get(item_id)
        if position is None:
            raise ItemNotFoundError(f"no item with id {item_id!r}")
        return self._item(position)

    def _item(self, row: int) -> Item:
        return Item(self._ids[row], self.vectors[row].copy(), self._metadata[row])

    def search(
        self,
        queries: np.ndarray,
        k: int,
        filter: Filter | None = None,
        metric: str = "l2",
        temperature: float = 1.0,
        *,
        exact: bool = False,
        target_recall: float | None = None,
    ) -> SearchResult:
        """The k nearest neighbours under any of `SEARCH_METRICS`: exact, or from an approximate structure.

        Exact: FAISS or the BLAS scan finds candidates (in float32, for divergences in a transformed space, see
        `indexes.metrics`), their true values are computed in float64 and sorted, and a certificate proves no other
        item is closer. Approximate (an index with candidate structures, a metric and T they serve, measured to
        reach the target recall): the structure's R candidates plus the exact top k of the rows written since the
        build are re-ranked the same way, so distances are exact and only membership is approximate.

        Args:
            queries: `(q, dim)` float32, C-contiguous, finite.
            k: neighbours per query, >= 1.
            filter: exact-match metadata conditions (`"predicted"` = argmax class), or None.
            metric: one of `SEARCH_METRICS`.
            temperature: softmax temperature T > 0 of the divergence metrics.
            exact: force the exact scan.
            target_recall: the recall@10 an approximate search must have been measured to reach (default: the
                index's own target); an index that cannot answers exactly.

        Returns:
            For each query, at most k neighbours sorted by ascending distance.
        """
        selection = self._select(filter, temperature)
        if selection.num_matches == 0:
            return SearchResult([[] for _ in range(len(queries))])
        plan = None if exact else self._plan(metric, temperature, target_recall, selection, len(queries))
        if plan is None:
            source = _FaissCandidates(self, selection, metric, temperature)
            top = exact_top(source, queries, k, metric, temperature, num_matches=selection.num_matches)
            return self._hits(top)
        return self._search_planned(queries, k, metric, temperature, plan, selection)

    def _hits(self, top: list[tuple[np.ndarray, np.ndarray]], recall: float | None = None) -> SearchResult:
        ids, metadata = self._ids, self._metadata
        hits = []
        for positions, distances in top:
            rows = positions.tolist()
            hits.append(QueryHits([ids[p] for p in rows], distances, metadata.take(rows)))
        return SearchResult.from_columns(hits, exact=recall is None, recall_at_10=recall)

    def _plan(
        self, metric: str, temperature: float, target: float | None, selection: "_Selection", num_queries: int
    ) -> Plan | None:
        approximate = self._approximate
        if approximate is None or selection.num_matches <= EXACT_FILTER_FRACTION * self.count():
            return None
        return approximate.plan(metric, temperature, target, num_queries)

    def _search_planned(
        self, queries: np.ndarray, k: int, metric: str, temperature: float, plan: Plan, selection: "_Selection"
    ) -> SearchResult:
        """An approximate search by `plan`; a query left with fewer than k hits (a filter excluding most of its
        candidates) is answered exactly. From a float16 copy, the re-rank keeps 2k and the originals decide."""
        wide = k if self._half is None else 2 * k
        source = _ApproximateCandidates(self, selection, metric, temperature, plan, wide)
        top = exact_top(source, queries, wide, metric, temperature, m=source.width)
        if self._half is not None:
            top = self._rerank_originals(queries, top, k, metric, temperature)
        short = [i for i, (keys, _) in enumerate(top) if len(keys) < min(k, selection.num_matches)]
        if short:
            exact_source = _FaissCandidates(self, selection, metric, temperature)
            redone = exact_top(exact_source, queries[short], k, metric, temperature, num_matches=selection.num_matches)
            for i, found in zip(short, redone, strict=True):
                top[i] = found
        return self._hits(top, plan.recall)

    def _rerank_originals(
        self, queries: np.ndarray, top: list[TopK], k: int, metric: str, temperature: float
    ) -> list[TopK]:
        """The k best of each query's `top` by their exact distances from the stored float32 rows."""
        width = max((len(keys) for keys, _ in top), default=0)
        if width == 0:
            return top
        keys = np.full((len(top), width), -1, np.int64)
        for i, (found, _) in enumerate(top):
            keys[i, : len(found)] = found
        vectors = self.vectors[np.maximum(keys, 0)]
        values = exact_distances(metric, queries, vectors, temperature, best=k if (keys >= 0).all() else None)
        values[keys < 0] = np.inf
        result: list[TopK] = []
        for i, (found, _) in enumerate(top):
            n = len(found)
            order = order_breaking_ties(metric, values[i, :n], queries[i], vectors[i, :n], temperature)[:k]
            result.append((keys[i, order], values[i, order]))
        return result

    def _rerank_rows(self, keys: np.ndarray) -> np.ndarray:
        """`(q, m, C)` rows an approximate search re-ranks: from the float16 copy when there is one (as float32),
        else the originals (any row where the key is -1)."""
        rows = np.maximum(keys, 0)
        found: np.ndarray = self.vectors[rows] if self._half is None else self._half.values[rows].astype(np.float32)
        return found

    # -- approximate structures ---------------------------------------------------------------------------------

    @property
    def approximate(self) -> Approximate | None:
        """The installed candidate structures and their measured recall, or None (every search is exact)."""
        return self._approximate

    def install_approximate(
        self,
        options: AnnOptions,
        structures: dict[Any, Structure],
        ids: list[str],
        hashes: np.ndarray,
        built_at: str | None = None,
        calibrations: dict[tuple[str, float | None], Calibration] | None = None,
    ) -> None:
        """Serve searches from `structures`, built over the items `ids` whose logits had `row_hashes` `hashes`
        `(L,)`: a label whose item was deleted or written since is masked, and rows no label covers are scanned
        exactly (the delta). `built_at` and `calibrations` come with a saved build."""
        rows = np.fromiter((self._positions.get(i, -1) for i in ids), np.int64, len(ids))
        present = np.flatnonzero(rows >= 0)
        current = self.vectors
        for start in range(0, len(present), 65_536):  # unchanged since the build, compared in chunks
            chunk = present[start : start + 65_536]
            rows[chunk[row_hashes(current[rows[chunk]]) != hashes[chunk]]] = -1
        approximate = Approximate(options, structures, LabelMap(rows, self.count()), len(ids), list(ids), hashes)
        if built_at is not None:
            approximate.built_at = built_at
        approximate.calibrations.update(calibrations or {})
        self._approximate = approximate

    def measure_recall(self, metric: str, temperature: float | None, rows: np.ndarray) -> Calibration:
        """Recall@10 of every ladder step of the structure serving `metric` at T, against the exact scan, with the
        stored items at `rows`, perturbed (`calibration_queries`), as queries (each one's own item left out)."""
        approximate = self._approximate
        assert approximate is not None
        t = 1.0 if temperature is None else temperature
        queries = calibration_queries(self.vectors[rows])
        own = [self._ids[r] for r in rows.tolist()]
        everything = _Selection(None, self.count())
        began = time.perf_counter()
        exact = self.search(queries, RECALL_K + 1, metric=metric, temperature=t, exact=True)
        exact_seconds = (time.perf_counter() - began) / len(rows)
        truth = [hits.ids for hits in exact.columns()]
        steps, seconds = [], []
        for plan in approximate.steps(family_of(metric, t)):
            began = time.perf_counter()
            found = self._search_planned(queries, RECALL_K + 1, metric, t, plan, everything).columns()
            seconds.append((time.perf_counter() - began) / len(rows))
            recall = recall_at_10([hits.ids for hits in found], truth, own)
            steps.append((plan.param, plan.candidates, recall))
            if recall >= 1.0:
                break
        return Calibration(metric, temperature, steps, len(rows), self.count(), seconds, exact_seconds)

    def _select(self, filter: Filter | None, temperature: float = 1.0) -> _Selection:
        """The rows matching `filter` (derived fields at `temperature`) and FAISS search parameters restricted to
        them (no mask: every row)."""
        if not filter or self.count() == 0:
            return _Selection(None, self.count())
        mask = match_filter(filter, self._metadata.distinct, self.vectors, self._metadata.codes, temperature)
        bitmap = np.packbits(mask, bitorder="little")
        params = faiss.SearchParameters()
        params.sel = faiss.IDSelectorBitmap(len(mask), faiss.swig_ptr(bitmap))
        return _Selection(mask, int(np.count_nonzero(mask)), params, bitmap)

    def _embedding(self, metric: str, temperature: float) -> Embedding:
        """The space `metric`'s candidates come from at `temperature` (at high T a centred one for ce, kl, js and
        tri: `metrics.ce_embedding`, `metrics.sqrt_q_embedding`)."""
        if metric not in ("ce", "kl", "js", "tri"):
            return EMBEDDINGS[metric]
        if self._centred_max is None or self._centred_max[0] != self._version:
            self._centred_max = (self._version, _largest_centred(self.vectors))
        if metric in ("js", "tri"):
            return sqrt_q_embedding(temperature, self._centred_max[1])
        return ce_embedding(temperature, self.dim, self._centred_max[1])

    def _candidates(
        self, queries: np.ndarray, m: int, metric: str, temperature: float, selection: _Selection
    ) -> tuple[np.ndarray, np.ndarray, Embedding | None, np.ndarray | None]:
        """Float32 scores (FAISS's conventions) and row positions `(q, m)` of each query's m best candidates (-1
        where fewer match), from FAISS or from a BLAS scan, and their space and its column maxima where that is not
        the metric's usual one (`Candidates.space`, `Candidates.column_max`)."""
        norms: np.ndarray | None
        kind: Kind
        space, column_max = None, None
        if metric == "l2":
            cpu, gpu, vectors = self._cpu, self._gpu, np.ascontiguousarray(queries, dtype=np.float32)
            matrix, norms, kind = self.vectors, self._norms.values, "l2"
        else:
            embedding = self._embedding(metric, temperature)
            derived = self._derived.get(embedding, temperature, self.vectors, self._version)
            cpu, gpu, vectors = derived.cpu, derived.gpu, embedding.transform_queries(queries, temperature)
            matrix, norms, kind = derived.vectors, derived.norms, embedding.kind
            if embedding is not EMBEDDINGS[metric]:
                space, column_max = embedding, derived.column_max
        use_gpu = gpu is not None and selection.mask is None and m <= GPU_MAX_K
        scan = not use_gpu and prefers_scan(len(queries), len(matrix), matrix.shape[1])
        if self.kernel == "scan" or (self.kernel == "auto" and scan) or (cpu is None and not use_gpu):
            return (*scan_candidates(matrix, norms, vectors, m, kind, selection.mask), space, column_max)
        index: Any = gpu if use_gpu else cpu
        scores, positions = index.search(vectors, m, params=selection.params)
        return scores, positions, space, column_max

    def replace_all(
        self,
        ids: list[str],
        vectors: np.ndarray,
        metadata: list[Metadata],
        seqs: np.ndarray | None = None,
        next_seq: int | None = None,
    ) -> None:
        """Load a whole snapshot at once (ids distinct, vectors `(n, dim)` float32), with each item's seq and the next
        one to give (default: 0 to n - 1, and n: the rows are in insertion order)."""
        seqs = np.arange(len(ids), dtype=np.int64) if seqs is None else np.asarray(seqs, dtype=np.int64)
        next_seq = len(ids) if next_seq is None else next_seq
        if len(ids) != len(vectors) or len(ids) != len(metadata) or len(set(ids)) != len(ids) or len(seqs) != len(ids):
            raise IndexError_("snapshot ids, vectors, metadata and seqs disagree in length or repeat an id")
        if len(seqs) and (np.any(np.diff(seqs) <= 0) or seqs[0] < 0 or next_seq <= seqs[-1]):
            raise IndexError_("snapshot seqs are not increasing, or the next seq is not past them")
        if self._rows is not None:
            self._rows.replace(vectors)
        elif self._cpu is not None:
            self._cpu.reset()
            if len(ids):
                self._cpu.add(np.ascontiguousarray(vectors, dtype=np.float32))
        if self._half is not None:
            self._half.replace(vectors)
        self._view = None
        self._norms.replace(_squared_norms(self.vectors))
        self._ids = list(ids)
        self._approximate = None
        self._metadata.replace(metadata)
        self._positions = {item_id: i for i, item_id in enumerate(ids)}
        self._seqs.replace(seqs)
        self._next_seq = next_seq
        self._listed_ids = None
        self._version += 1
        self._sync_gpu()

    def _sync_gpu(self) -> None:
        # A GPU flat index cannot overwrite or remove rows: re-upload (one host-to-device copy of n x dim).
        if self._gpu is not None:
            self._gpu.reset()
            if self.count():
                self._gpu.add(np.ascontiguousarray(self.vectors))

    # Defined last: inside the class body the name `list` would shadow the builtin in later annotations.
    def list(self, offset: int, limit: int) -> list[Item]:
        """Items in insertion order (a replaced item keeps its place); `DurableIndex` keeps it across restarts."""
        if self._listed_ids is None:
            self._listed_ids = list(self._positions)
        return [self.get(item_id) for item_id in self._listed_ids[offset : offset + limit]]


def _largest_centred(vectors: np.ndarray, chunk: int = 1 << 14) -> float:
    """The largest `|z_i − mean(z)|` of any row `(n, C)`, read in row chunks (no `n × C` temporary)."""
    largest = 0.0
    for start in range(0, len(vectors), chunk):
        rows = vectors[start : start + chunk].astype(np.float64)
        largest = max(largest, float(np.abs(rows - rows.mean(axis=1, keepdims=True)).max()))
    return largest


def _squared_norms(vectors: np.ndarray) -> np.ndarray:
    """`(n, C)` float32 -> `(n,)` float32 squared L2 norms (candidate scores only: the re-rank is exact)."""
    norms: np.ndarray = np.einsum("nc,nc->n", vectors, vectors, dtype=np.float32)
    return norms


@dataclass(frozen=True)
class _FaissCandidates:
    """One search's candidates from a `FaissIndex`: its rows matching the filter, keyed by row position."""

    index: FaissIndex
    selection: _Selection
    metric: str
    temperature: float
    exact: bool = True

    def candidates(self, queries: np.ndarray, m: int) -> Candidates:
        found = self.index._candidates(queries, m, self.metric, self.temperature, self.selection)
        scores, positions, space, column_max = found
        return Candidates(scores, positions, self.index.vectors[np.maximum(positions, 0)], space, column_max)

    def num_matches(self) -> int:
        return self.selection.num_matches

    def matches(self) -> tuple[np.ndarray, np.ndarray]:
        """Every matching row and its logits (the stored array itself, not a copy, without a filter)."""
        mask = self.selection.mask
        if mask is None:
            return np.arange(self.index.count()), self.index.vectors
        rows = np.flatnonzero(mask)
        return rows, self.index.vectors[rows]


class _ApproximateCandidates:
    """One approximate search's candidates: a structure's R best (stale labels and rows outside the filter
    excluded), and the exact top k of the rows written since the build that the filter keeps."""

    exact = False

    def __init__(
        self, index: FaissIndex, selection: _Selection, metric: str, temperature: float, plan: Plan, k: int
    ) -> None:
        approximate = index.approximate
        assert approximate is not None
        self.index, self.selection, self.metric, self.temperature, self.plan, self.k = (
            index, selection, metric, temperature, plan, k
        )  # fmt: skip
        self.label_rows = approximate.labels.label_rows
        labels = approximate.labels
        if selection.mask is None:
            self.labels = labels.live_labels()
            self.delta = _Selection(labels.delta_mask(), labels.num_delta)
        else:
            rows = self.label_rows
            self.labels = np.packbits((rows >= 0) & selection.mask[np.maximum(rows, 0)], bitorder="little")
            delta = labels.delta_mask() & selection.mask
            self.delta = _Selection(delta, int(np.count_nonzero(delta)))
        self.width = max(plan.candidates, 2 * k) + (k if self.delta.num_matches else 0)

    def candidates(self, queries: np.ndarray, m: int) -> Candidates:
        labels = self.plan.search(queries, self.temperature, self.k, self.labels)
        keys = np.where(labels >= 0, self.label_rows[np.maximum(labels, 0)], -1)
        if self.delta.num_matches:
            exact_source = _FaissCandidates(self.index, self.delta, self.metric, self.temperature)
            top = exact_top(exact_source, queries, self.k, self.metric, self.temperature, self.delta.num_matches)
            written = np.full((len(queries), self.k), -1, np.int64)
            for i, (rows, _) in enumerate(top):
                written[i, : len(rows)] = rows
            keys = np.hstack([keys, written])
        return Candidates(np.zeros(keys.shape, np.float32), keys, self.index._rerank_rows(keys))

    def num_matches(self) -> int:
        return self.selection.num_matches

    def matches(self) -> tuple[np.ndarray, np.ndarray]:
        return _FaissCandidates(self.index, self.selection, self.metric, self.temperature).matches()
