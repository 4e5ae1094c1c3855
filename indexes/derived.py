"""FAISS indexes over transformed item vectors (log-softmax at T, √softmax, centred or unit rows), cached."""

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch  # noqa: F401 - before faiss: both bundle OpenMP, and this order is the tested one

# isort: split
import faiss
import numpy as np

from .metrics import Embedding


@dataclass(frozen=True)
class DerivedIndex:
    """One transform of the stored vectors: a CPU flat index, its GPU mirror when on a GPU, a view of the
    index's `(n, D)` float32 rows for BLAS scans, their `(n,)` squared norms for an `"l2"` embedding, and the
    `(D,)` largest absolute entry of each column (for the certificate of scores with terms of both signs)."""

    version: int
    cpu: Any
    gpu: Any | None
    vectors: np.ndarray
    norms: np.ndarray | None
    column_max: np.ndarray


class DerivedIndexCache:
    """Least-recently-used cache of `DerivedIndex`es keyed by (embedding, temperature).

    An entry is rebuilt from the stored vectors (one O(n·C) pass) when the data changed since it was built;
    at most `max_entries` are kept, since each holds a copy of the vectors (`n × C` float32).

    Args:
        max_entries: how many transforms to keep.
        gpu_resources: `faiss.StandardGpuResources` to mirror each entry on the GPU, or None.
    """

    def __init__(self, max_entries: int = 4, gpu_resources: Any | None = None) -> None:
        self.max_entries = max_entries
        self._gpu_resources = gpu_resources
        self._entries: OrderedDict[tuple[str, float | None], DerivedIndex] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, embedding: Embedding, temperature: float, vectors: np.ndarray, version: int) -> DerivedIndex:
        """The index of `embedding` at `temperature` over `vectors` `(n, C)` at data `version`."""
        key = (embedding.key, temperature if embedding.uses_temperature else None)
        with self._lock:  # searches run concurrently; build each entry once
            entry = self._entries.get(key)
            if entry is None or entry.version != version:
                entry = self._build(embedding, temperature, vectors, version)
                self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
            return entry

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def _build(self, embedding: Embedding, temperature: float, vectors: np.ndarray, version: int) -> DerivedIndex:
        items = embedding.transform_items(vectors, temperature)
        num_rows, dim = items.shape
        cpu = faiss.IndexFlatIP(dim) if embedding.kind == "ip" else faiss.IndexFlatL2(dim)
        cpu.add(items)
        if num_rows:  # the index holds its own copy of the rows: scans read that one, through a view
            items = faiss.rev_swig_ptr(cpu.get_xb(), num_rows * dim).reshape(num_rows, dim)
        norms = np.einsum("nd,nd->n", items, items, dtype=np.float32) if embedding.kind == "l2" else None
        gpu = None
        if self._gpu_resources is not None:
            flat = faiss.GpuIndexFlatIP if embedding.kind == "ip" else faiss.GpuIndexFlatL2
            gpu = flat(self._gpu_resources, dim)
            gpu.add(items)
        column_max = np.abs(items).max(axis=0) if num_rows else np.zeros(dim, np.float32)
        return DerivedIndex(version, cpu, gpu, items, norms, column_max)
