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
    if options.index_type == "hnsw":
        # The ce graph (inner products as L2) needs a better graph: at N = 100k, C = 100, M 32 and efConstruction
        # 128 reach ce recall@10 0.955 at efSearch 64, where M 16 and 64 need efSearch 128 (twice the build time).
        index.hnsw.efConstruction = options.ef_construction or (128 if family[0] == "ce" else 64)
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


def _bytes_per_item(index: Any, num_items: int) -> float:
    """Resident bytes per item: the codes, plus the graph's links (HNSW) or each list entry's id (IVF)."""
    if num_items == 0:
        return 0.0
    if hasattr(index, "hnsw"):
        storage: Any = faiss.downcast_index(index.storage)
        links = index.hnsw.neighbors.size() * 4 + index.hnsw.offsets.size() * 8 + index.hnsw.levels.size() * 4
        return float(storage.code_size + links / num_items)
    return float(cast(Any, index).code_size + 8)
