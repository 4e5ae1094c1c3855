"""Candidate structures: FAISS HNSW or IVF indexes over a family's item vectors, built from a snapshot of rows."""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import torch  # noqa: F401 - before faiss: both bundle OpenMP, and this order is the tested one

# isort: split
import faiss
import numpy as np

from .encodings import encode_items
from .options import BUILD_CHUNK, GPU_MAX_K, AnnOptions, FamilyKey


@dataclass
class Structure:
    """One built candidate structure: a FAISS index whose labels are positions in the build's snapshot.

    Attributes:
        family: (family, T) key.
        index: the FAISS index (`IndexHNSW*` searched as L2, or `IndexIVF*`).
        augmented: whether item vectors carry the extra coordinate of the inner-product-to-L2 transform (queries
            then get a 0 there).
        build_s: seconds the build took.
        bytes_per_item: resident bytes per item of the structure (codes, graph links or list ids).
        gpu: a copy of an IVF on the GPU (searches without a selector run there), or None.
    """

    family: FamilyKey
    index: Any
    augmented: bool
    build_s: float
    bytes_per_item: float
    gpu: Any = None

    def search(self, encoded: np.ndarray, r: int, param: int, labels: np.ndarray | None) -> np.ndarray:
        """Labels `(q, r)` of each query's r best candidates (-1 where fewer), searching with efSearch or nprobe
        `param`, restricted to `labels` (a bitmap over labels, packed little-endian) when given."""
        if self.augmented:
            encoded = np.hstack([encoded, np.zeros((len(encoded), 1), np.float32)])
        params: Any
        if hasattr(self.index, "hnsw"):
            params = cast(Any, faiss).SearchParametersHNSW(efSearch=max(param, r))  # not in faiss's type stubs
        else:
            params = faiss.SearchParametersIVF()
            params.nprobe = param
        if labels is not None:
            params.sel = faiss.IDSelectorBitmap(self.index.ntotal, faiss.swig_ptr(labels))
        # FAISS's GPU IVF takes no selector, and at most GPU_MAX_K results and lists: those run on the CPU copy.
        on_gpu = self.gpu is not None and labels is None and max(r, param) <= GPU_MAX_K
        _, found = (self.gpu if on_gpu else self.index).search(np.ascontiguousarray(encoded), r, params=params)
        result: np.ndarray = found
        return result


def _factory(options: AnnOptions, family: FamilyKey, dim: int, num_items: int) -> str:
    """FAISS factory string of one structure of `dim` columns over `num_items` rows."""
    codec = {"float32": "Flat", "float16": "SQfp16", "sq8": "SQ8"}[options.codec]
    if options.index_type == "hnsw":
        return f"HNSW{options.m or (32 if family[0] == 'ce' or dim >= 500 else 16)},{codec}"
    return f"IVF{default_nlist(options, num_items)},{codec}"


def default_nlist(options: AnnOptions, num_items: int) -> int:
    """IVF lists: the option, else the power of two nearest 2√N, with at least 39 rows per list to train on."""
    if options.nlist is not None:
        return min(options.nlist, max(1, num_items))
    wanted = 2 ** round(math.log2(max(1.0, 2 * math.sqrt(num_items))))
    return int(max(1, min(wanted, num_items // 39)))


def build_structure(
    options: AnnOptions,
    family: FamilyKey,
    z: np.ndarray,
    cancelled: Callable[[], bool] = lambda: False,
    gpu_resources: Any = None,
) -> Structure | None:
    """Build one family's structure over the logits `z` `(n, C)` float32 (labels = row positions in `z`).

    With `gpu_resources` (a `faiss.StandardGpuResources`), an IVF is also copied to the GPU, where the searches
    without a selector run; HNSW stays on the CPU. Returns None when `cancelled()` turned true between chunks.
    """
    began = time.perf_counter()
    grid = options.grid()
    vectors = encode_items(family, z, grid)
    augmented = family[0] == "ce" and options.index_type == "hnsw"
    if augmented:  # maximum inner product as L2: [y, √(Φ² − ‖y‖²)] against [x, 0]
        squared = np.einsum("nd,nd->n", vectors, vectors, dtype=np.float64)
        extra = np.sqrt(np.maximum(squared.max(initial=0.0) - squared, 0.0))
        vectors = np.ascontiguousarray(np.hstack([vectors, extra[:, None]]), dtype=np.float32)
    # IVF scores ce by inner product and routes by it: L2 routing of these vectors sends every query to the smallest
    # centroids (recall@10 0.045 at N = 100k).
    metric = faiss.METRIC_INNER_PRODUCT if family[0] == "ce" and not augmented else faiss.METRIC_L2
    index: Any = faiss.index_factory(
        vectors.shape[1], _factory(options, family, vectors.shape[1], len(vectors)), metric
    )
    if augmented:
        return _routed(options, index, vectors, z, cancelled, began)
    if options.index_type == "hnsw":
        index.hnsw.efConstruction = options.ef_construction or 64
    gpu = None
    if gpu_resources is not None and options.index_type == "ivf":  # trained and filled on the GPU
        gpu = index = cast(Any, faiss).index_cpu_to_gpu(gpu_resources, 0, index)  # only in faiss-gpu's module
    if not index.is_trained:
        sample = min(len(vectors), max(256 * getattr(index, "nlist", 1), 50_000))
        rows = np.sort(np.random.default_rng(0).choice(len(vectors), sample, replace=False))
        index.train(vectors[rows])
    for start in range(0, len(vectors), BUILD_CHUNK):
        if cancelled():
            return None
        index.add(vectors[start : start + BUILD_CHUNK])
    if gpu is not None:  # the CPU copy answers searches with a selector, which FAISS's GPU IVF does not take
        index = cast(Any, faiss).index_gpu_to_cpu(gpu)
    return Structure(family, index, augmented, time.perf_counter() - began, _bytes_per_item(index, len(vectors)), gpu)


def routing_temperature(options: AnnOptions) -> float:
    """T of the Hellinger vectors `√softmax(z / T)` the ce graph links items by: the grid point nearest a third of
    the way up the declared range (log scale), 1 for [0.5, 4], since low temperatures are where a graph misses
    (N = 300k, C = 100, T 0.5 / 1 / 4, recall@10 at efSearch 16 by that graph: T = 0.5 links 0.985 / 0.978 / 0.844,
    T = 1 0.972 / 1.000 / 0.993, T = 1.41 0.921 / 1.000 / 1.000)."""
    grid = options.grid()
    wanted = grid[0] ** (2 / 3) * grid[-1] ** (1 / 3)
    return float(grid[np.argmin(np.abs(np.log(grid / wanted)))])


def _routed(
    options: AnnOptions, index: Any, vectors: np.ndarray, z: np.ndarray, cancelled: Callable[[], bool], began: float
) -> Structure | None:
    """The ce HNSW: its graph links items by L2 between Hellinger vectors at `routing_temperature`, and it searches
    that graph by the L2 of the augmented ce vectors `vectors` (stored in `index`'s codec).

    A graph built on the augmented vectors themselves links items by their centred logits, where the many unlikely
    classes dominate; queries at low T weigh only the likely ones, and its searches miss (N = 300k, C = 100,
    T = 0.5: recall@10 0.74 at efSearch 128, against 0.99 over the Hellinger graph; T = 4 is 1.0 on both). The
    build holds the Hellinger vectors (4·C bytes per item) until the links are copied; the structure keeps none.
    """
    graph: Any = faiss.IndexHNSWFlat(z.shape[1], options.m or 32)
    # M 32 and efConstruction 128: at N = 100k, C = 100, the former ce graph needed twice the efSearch with 16, 64.
    graph.hnsw.efConstruction = options.ef_construction or 128
    key: FamilyKey = ("js", routing_temperature(options))
    for start in range(0, len(z), BUILD_CHUNK):
        if cancelled():
            return None
        graph.add(encode_items(key, z[start : start + BUILD_CHUNK], options.grid()))
    if not index.is_trained:  # the codec (sq8) learns its ranges
        index.train(vectors[np.sort(np.random.default_rng(0).choice(len(vectors), min(len(vectors), 50_000), False))])
    index.storage.add(vectors)
    index.hnsw = graph.hnsw  # a copy of the links: the search walks them and measures the ce vectors
    index.ntotal = graph.ntotal
    del graph
    return Structure(("ce", None), index, True, time.perf_counter() - began, _bytes_per_item(index, len(vectors)))


def _bytes_per_item(index: Any, num_items: int) -> float:
    """Resident bytes per item: the codes, plus the graph's links (HNSW) or each list entry's id (IVF)."""
    if num_items == 0:
        return 0.0
    if hasattr(index, "hnsw"):
        storage: Any = faiss.downcast_index(index.storage)
        links = index.hnsw.neighbors.size() * 4 + index.hnsw.offsets.size() * 8 + index.hnsw.levels.size() * 4
        return float(storage.code_size + links / num_items)
    return float(cast(Any, index).code_size + 8)
