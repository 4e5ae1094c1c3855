"""In-memory FAISS flat L2 index with string ids and metadata, on CPU or mirrored on a GPU."""

import logging
from collections.abc import Sequence
from typing import Any

import faiss
import numpy as np

from .errors import IndexError_, ItemNotFoundError
from .filters import match_filter
from .store import Filter, Item, Metadata, Neighbor, SearchResult

logger = logging.getLogger(__name__)

#: Largest k a GPU flat index answers; larger k is served from the CPU copy.
GPU_MAX_K = 2048
#: Bound on the floats gathered at once when re-ranking candidates exactly.
_RERANK_CHUNK = 1 << 23


def faiss_gpu_available() -> bool:
    """True when the installed FAISS has GPU support and sees at least one device."""
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def create_gpu_resources(setting: str) -> Any | None:
    """GPU resources for `FaissIndex`, or None to stay on CPU.

    Args:
        setting: `"auto"` (GPU when available), `"true"` (GPU or fail), `"false"` (CPU).

    Raises:
        IndexError_: `"true"` without GPU FAISS or a visible device; never falls back silently.
    """
    if setting == "false":
        return None
    if faiss_gpu_available():
        return faiss.StandardGpuResources()
    if setting == "true":
        raise IndexError_(
            "LOGITSEARCH_FAISS_GPU=true but FAISS has no GPU support here or sees no CUDA device: install "
            "`pip install 'logit-search[gpu]'` (faiss-gpu-cu12) on a machine with an NVIDIA GPU, or set it to auto"
        )
    return None


def configure_faiss(num_threads: int) -> None:
    """Set FAISS's OpenMP thread count and make batched searches use its BLAS kernel.

    FAISS 1.15 only switches to BLAS when `num_queries * dim >= 128000`, so a batch of 256 queries over
    100 classes stays on a kernel 4-8x slower (PERF-NOTES.md); the older threshold of 20 queries fixes it.
    """
    faiss.omp_set_num_threads(num_threads)
    faiss.cvar.distance_compute_blas_threshold = 20


class FaissIndex:
    """Exact L2 index over logits, addressed by string ids, with a JSON metadata dict per item.

    The CPU `IndexFlatL2` is the storage of record: row `i` holds the vector of `ids[i]`. On a GPU a
    `GpuIndexFlatL2` mirrors it for unfiltered searches with `k <= GPU_MAX_K`. Deletes move the last row
    into the hole, so rows stay dense. Not thread-safe: `DurableIndex` serialises access.

    Args:
        dim: vector length (the model's number of classes).
        gpu_resources: a `faiss.StandardGpuResources` to put the search mirror on the GPU, or None for CPU.
    """

    def __init__(self, dim: int, gpu_resources: Any | None = None) -> None:
        self.dim = dim
        self._cpu = faiss.IndexFlatL2(dim)
        self._gpu_resources = gpu_resources
        self._gpu = faiss.GpuIndexFlatL2(gpu_resources, dim) if gpu_resources is not None else None
        self._ids: list[str] = []
        self._positions: dict[str, int] = {}
        self._metadata: list[Metadata] = []
        self._sorted_ids: list[str] | None = None

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
    def vectors(self) -> np.ndarray:
        """`(n, dim)` float32 view of the stored logits (FAISS's own buffer; invalid after the next write)."""
        n = self._cpu.ntotal
        if n == 0:
            return np.empty((0, self.dim), dtype=np.float32)
        view: np.ndarray = faiss.rev_swig_ptr(self._cpu.get_xb(), n * self.dim).reshape(n, self.dim)
        return view

    @property
    def ids(self) -> list[str]:
        return self._ids

    @property
    def metadata(self) -> list[Metadata]:
        return self._metadata

    def count(self) -> int:
        return len(self._ids)

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
        replaced = False
        stored = self.vectors
        for row, (item_id, meta) in enumerate(zip(ids, metadata, strict=True)):
            position = self._positions.get(item_id)
            if position is None:
                new_rows.append(row)
            else:
                stored[position] = vectors[row]
                self._metadata[position] = meta
                replaced = True
        if new_rows:
            start = len(self._ids)
            added = np.ascontiguousarray(vectors[new_rows])
            self._cpu.add(added)
            if self._gpu is not None and not replaced:
                self._gpu.add(added)
            for offset, row in enumerate(new_rows):
                self._positions[ids[row]] = start + offset
                self._ids.append(ids[row])
                self._metadata.append(metadata[row])
            self._sorted_ids = None
        if replaced:
            self._sync_gpu()
        return len(ids)

    def delete(self, item_id: str) -> None:
        """Remove one item; raises `ItemNotFoundError` if it is not stored."""
        position = self._positions.pop(item_id, None)
        if position is None:
            raise ItemNotFoundError(f"no item with id {item_id!r}")
        last = len(self._ids) - 1
        if position != last:
            stored = self.vectors
            stored[position] = stored[last]
            moved = self._ids[last]
            self._ids[position] = moved
            self._metadata[position] = self._metadata[last]
            self._positions[moved] = position
        self._ids.pop()
        self._metadata.pop()
        self._cpu.remove_ids(faiss.IDSelectorRange(last, last + 1))
        self._sorted_ids = None
        self._sync_gpu()

    def get(self, item_id: str) -> Item:
        position = self._positions.get(item_id)
        if position is None:
            raise ItemNotFoundError(f"no item with id {item_id!r}")
        return Item(item_id, self.vectors[position].copy(), self._metadata[position])

    def search(self, queries: np.ndarray, k: int, filter: Filter | None = None) -> SearchResult:
        """Exact L2 nearest neighbours.

        FAISS finds the candidates (squared distances, computed through BLAS for batches, which loses
        precision to cancellation); their true Euclidean distances are then recomputed from the
        differences, so an item queried with its own logits comes back at distance 0.

        Args:
            queries: `(q, dim)` float32, C-contiguous, finite.
            k: neighbours per query, >= 1.
            filter: exact-match metadata conditions (`"predicted"` = argmax class), or None.

        Returns:
            For each query, at most k neighbours sorted by ascending distance.
        """
        if self.count() == 0:
            return SearchResult([[] for _ in range(len(queries))])
        if filter:
            mask = match_filter(filter, self._metadata, self.vectors)
            num_matches = int(mask.sum())
            if num_matches == 0:
                return SearchResult([[] for _ in range(len(queries))])
            bitmap = np.packbits(mask, bitorder="little")
            params = faiss.SearchParameters()
            params.sel = faiss.IDSelectorBitmap(len(mask), faiss.swig_ptr(bitmap))
            _, positions = self._cpu.search(queries, min(k, num_matches), params=params)
        else:
            kk = min(k, self.count())
            index = self._gpu if self._gpu is not None and kk <= GPU_MAX_K else self._cpu
            _, positions = index.search(queries, kk)
        return self._rerank(queries, positions)

    def _rerank(self, queries: np.ndarray, positions: np.ndarray) -> SearchResult:
        stored = self.vectors
        num_queries, kk = positions.shape
        chunk = max(1, _RERANK_CHUNK // max(1, kk * self.dim))
        neighbors: list[list[Neighbor]] = []
        for start in range(0, num_queries, chunk):
            block = positions[start : start + chunk]
            diff = stored[np.maximum(block, 0)] - queries[start : start + chunk, None, :]
            distances = np.sqrt(np.einsum("qkc,qkc->qk", diff, diff, dtype=np.float64))
            distances[block < 0] = np.inf
            order = np.argsort(distances, axis=1, kind="stable")
            for row, (dist_row, pos_row) in enumerate(zip(distances, block, strict=True)):
                neighbors.append(
                    [
                        Neighbor(self._ids[pos_row[j]], float(dist_row[j]), self._metadata[pos_row[j]])
                        for j in order[row]
                        if pos_row[j] >= 0
                    ]
                )
        return SearchResult(neighbors)

    def replace_all(self, ids: list[str], vectors: np.ndarray, metadata: list[Metadata]) -> None:
        """Load a whole snapshot at once (ids distinct, vectors `(n, dim)` float32)."""
        if len(ids) != len(vectors) or len(ids) != len(metadata) or len(set(ids)) != len(ids):
            raise IndexError_("snapshot ids, vectors and metadata disagree in length or repeat an id")
        self._cpu.reset()
        if len(ids):
            self._cpu.add(np.ascontiguousarray(vectors, dtype=np.float32))
        self._ids = list(ids)
        self._metadata = list(metadata)
        self._positions = {item_id: i for i, item_id in enumerate(ids)}
        self._sorted_ids = None
        self._sync_gpu()

    def _sync_gpu(self) -> None:
        # A GPU flat index cannot overwrite or remove rows: re-upload (one host-to-device copy of n x dim).
        if self._gpu is not None:
            self._gpu.reset()
            if self.count():
                self._gpu.add(np.ascontiguousarray(self.vectors))

    # Defined last: inside the class body the name `list` would shadow the builtin in later annotations.
    def list(self, offset: int, limit: int) -> list[Item]:
        """Items in ascending id order, a stable order across deletes and restarts."""
        if self._sorted_ids is None:
            self._sorted_ids = sorted(self._ids)
        return [self.get(item_id) for item_id in self._sorted_ids[offset : offset + limit]]
