"""Approximate candidate structures (HNSW, IVF) that follow each metric, and their recall measured on the index.

Each metric becomes L2 or an inner product on an encoding of the logits (DESIGN.md, "Approximate indexes"):

- `l2`: the logits; `l2_centered`: the centred logits; `cosine`: unit rows (L2 between unit rows orders like
  cosine).
- `ce` and `kl`, every T of a range at once: with centred logits `z_c` and `b_T(z) = T·logsumexp(z_c / T)`,
  `T·CE(p_T, q_T) = b_T − p_T·z_c` exactly (Σp = 1), so one T-free structure over `[z_c, b_T1, …, b_TK]` (a grid
  of temperatures) queried with `[p_T, −w]` (w: T's linear-interpolation weights on the grid) orders items by
  −T·CE, exactly at grid points. HNSW searches it as L2 after the extra-coordinate transform (Bachrach et al.,
  2014); IVF routes it by inner product (L2 routing of such vectors sends every query to the smallest centroids).
  `kl = ce − H(p)` ranks the same.
- `js` and `tri` at one declared T: `√softmax(z / T)` (unit rows, in the Hellinger order that bounds both).
- `kl_reverse` and undeclared temperatures have no structure: they are answered by the exact flat scan.

A structure returns candidates only; the exact float64 re-rank (`indexes.rerank`) computes their distances, so
distances are exact and only membership is approximate. How approximate is measured, never assumed: `calibrate`
searches a seeded sample of stored items with every step of a ladder of search parameters (efSearch or nprobe, and
R candidates re-ranked) and records each step's recall@10 against the exact scan; a search takes the first step
whose recall reaches its target.
"""

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import torch  # noqa: F401 - before faiss: both bundle OpenMP, and this order is the tested one

# isort: split
import faiss
import numpy as np

from .divergences import log_softmax
from .errors import InvalidInputError

logger = logging.getLogger(__name__)

INDEX_TYPES = ("hnsw", "ivf")
CODECS = ("float32", "float16", "sq8")
#: The metrics a structure can serve; `kl_reverse` is always answered exactly.
APPROXIMATE_METRICS = ("l2", "l2_centered", "cosine", "ce", "kl", "js", "tri")
DEFAULT_METRICS = ("l2", "ce", "kl")
#: Metrics served by each family of structure.
FAMILY_METRICS: dict[str, tuple[str, ...]] = {
    "l2": ("l2",),
    "l2_centered": ("l2_centered",),
    "cosine": ("cosine",),
    "ce": ("ce", "kl"),
    "js": ("js", "tri"),
}
_FAMILY_OF = {metric: family for family, metrics in FAMILY_METRICS.items() for metric in metrics}
#: Steps of the ce/kl temperature grid between the lowest and the highest declared T.
GRID_STEP = math.sqrt(2.0)
#: From this many queries a search is a batch: the exact scan runs as a GEMM then, and an approximate step is used
#: only if it measured faster than that (`Calibration.beats_exact_in_batches`).
BATCH_QUERIES = 20
#: Calibration: stored items searched as queries, and the neighbours compared.
CALIBRATION_QUERIES = 200
RECALL_K = 10
#: The most results FAISS's GPU indexes return per query (as `faiss_index.GPU_MAX_K`).
GPU_MAX_K = 2048
#: Rows encoded at a time.
ENCODE_CHUNK = 1 << 15
#: Rows added to a structure at a time while it is built (a build can be cancelled between chunks).
BUILD_CHUNK = 16_384
#: Ladder of search effort: step i searches with efSearch 16·2^i (HNSW, 8 steps) or nprobe 2^i (IVF, up to every
#: list), and re-ranks R candidates (`ladder`).
LADDER_STEPS = 8
CANDIDATES = 32

FamilyKey = tuple[str, float | None]  # (family, T for js; None for the others)


def ladder(index_type: str, nlist: int) -> list[tuple[int, int]]:
    """The (efSearch or nprobe, R) steps a structure is calibrated on, cheapest first.

    The search effort is the knob: at a fixed efSearch or nprobe, re-ranking more than about 3k candidates gains
    almost nothing (measured at N = 100k, C = 100: ce recall@10 0.966 at efSearch 128 with R = 16 and R = 128
    alike), while the re-rank's cost grows with R. The last HNSW steps widen R for quantised codes and for
    temperatures between grid points.
    """
    if index_type == "hnsw":
        return [(16 * 2**i, CANDIDATES) for i in range(LADDER_STEPS - 2)] + [(1024, 64), (2048, 128)]
    steps: list[tuple[int, int]] = []
    i = 0
    while not steps or steps[-1][0] < nlist:  # up to every list: the last step is the exhaustive scan
        steps.append((min(2**i, nlist), CANDIDATES))
        i += 1
    return steps


@dataclass(frozen=True)
class AnnOptions:
    """What an approximate index holds and how it is built.

    Attributes:
        index_type: `"hnsw"` or `"ivf"`.
        metrics: the metrics served approximately (others are answered exactly).
        temperatures: the declared T: ce and kl are served on the whole range they span (one structure), js and tri
            at each of them (one structure per T); any other T is answered exactly.
        codec: how candidate vectors are stored: `"float32"`, `"float16"` or `"sq8"` (8-bit scalar quantiser).
        target_recall: recall@10 a search reaches by default (per request it may ask for another).
        m: HNSW links per node (default 16; 32 for ce and kl, and from 500 classes).
        ef_construction: HNSW build effort (default 64; 128 for ce and kl).
        nlist: IVF lists (default about 2√N, a power of two, at least 39 rows per list).
    """

    index_type: str
    metrics: tuple[str, ...] = DEFAULT_METRICS
    temperatures: tuple[float, ...] = (1.0,)
    codec: str = "float32"
    target_recall: float = 0.95
    m: int | None = None
    ef_construction: int | None = None
    nlist: int | None = None

    def __post_init__(self) -> None:
        if self.index_type not in INDEX_TYPES:
            raise InvalidInputError(f"index_type {self.index_type!r}: choose flat, {' or '.join(INDEX_TYPES)}")
        unknown = [m for m in self.metrics if m not in APPROXIMATE_METRICS]
        if unknown or not self.metrics:
            raise InvalidInputError(
                f"metrics {list(self.metrics)}: give at least one of {', '.join(APPROXIMATE_METRICS)} "
                "(kl_reverse is always answered exactly)"
            )
        if not self.temperatures or any(not 0 < t < math.inf for t in self.temperatures):
            raise InvalidInputError(f"temperatures must be finite numbers > 0, at least one; got {self.temperatures}")
        if self.codec not in CODECS:
            raise InvalidInputError(f"codec {self.codec!r}: choose one of {', '.join(CODECS)}")
        if not 0 < self.target_recall <= 1:
            raise InvalidInputError(f"target_recall must be in (0, 1]; got {self.target_recall}")
        for name, value, low in (
            ("m", self.m, 4),
            ("ef_construction", self.ef_construction, 8),
            ("nlist", self.nlist, 1),
        ):
            if value is not None and not low <= value <= 65_536:
                raise InvalidInputError(f"{name} must be an integer in [{low}, 65536]; got {value}")

    def families(self) -> list[FamilyKey]:
        """The structures this index holds, as (family, T) keys."""
        keys: list[FamilyKey] = []
        for family in ("l2", "l2_centered", "cosine", "ce"):
            if any(metric in self.metrics for metric in FAMILY_METRICS[family]):
                keys.append((family, None))
        if "js" in self.metrics or "tri" in self.metrics:
            keys.extend(("js", t) for t in sorted(set(self.temperatures)))
        return keys

    def grid(self) -> np.ndarray:
        """`(K,)` ascending temperatures of the ce/kl structure: every declared T and √2 steps between them."""
        points = sorted(set(self.temperatures))
        for low, high in zip(points, points[1:], strict=False):  # √2 steps, none within 10 % of a declared T
            steps = math.floor(math.log(high / low) / math.log(GRID_STEP) - 0.1)
            points.extend(low * GRID_STEP**i for i in range(1, steps + 1) if low * GRID_STEP**i < high / 1.1)
        return np.array(sorted(points))

    def to_json(self) -> dict[str, Any]:
        return {
            "index_type": self.index_type,
            "metrics": list(self.metrics),
            "temperatures": list(self.temperatures),
            "codec": self.codec,
            "target_recall": self.target_recall,
            "m": self.m,
            "ef_construction": self.ef_construction,
            "nlist": self.nlist,
        }


# -- encodings ------------------------------------------------------------------------------------------------


def _centred(z: np.ndarray) -> np.ndarray:
    z64 = z.astype(np.float64)
    result: np.ndarray = z64 - z64.mean(axis=1, keepdims=True)
    return result


def _unit(z: np.ndarray) -> np.ndarray:
    z64 = z.astype(np.float64)
    scale = np.abs(z64).max(axis=1, keepdims=True)
    z64 = np.divide(z64, scale, out=np.zeros_like(z64), where=scale > 0)  # no overflow in the squares
    norms = np.linalg.norm(z64, axis=1, keepdims=True)
    unit: np.ndarray = np.divide(z64, norms, out=np.zeros_like(z64), where=norms > 0)
    return unit


def _biases(z: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """`(n, K)` `b_T(z) = T·logsumexp(z_c / T)` at each grid T, from the centred logits."""
    centred = _centred(z)
    top = centred.max(axis=1, keepdims=True)
    columns = [
        top[:, 0] + t * np.log(np.exp((centred - top) / t).sum(axis=1)) for t in grid.tolist()
    ]  # T·lse(z/T) = max + T·log Σ exp((z − max)/T)
    return np.stack(columns, axis=1)


def encode_items(family: FamilyKey, z: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """`(n, C)` logits -> `(n, D)` float32 item vectors of a family's structure, computed in row chunks (the
    float64 intermediates stay small)."""
    if family[0] == "l2":
        return np.ascontiguousarray(z, dtype=np.float32)
    first = _encode_rows(family, z[:1], grid)
    out = np.empty((len(z), first.shape[1]), np.float32)
    for start in range(0, len(z), ENCODE_CHUNK):
        out[start : start + ENCODE_CHUNK] = _encode_rows(family, z[start : start + ENCODE_CHUNK], grid)
    return out


def _encode_rows(family: FamilyKey, z: np.ndarray, grid: np.ndarray) -> np.ndarray:
    name, temperature = family
    if name == "l2":
        encoded = z
    elif name == "l2_centered":
        encoded = _centred(z)
    elif name == "cosine":
        encoded = _unit(z)
    elif name == "js":
        assert temperature is not None
        encoded = np.exp(0.5 * log_softmax(z, temperature))
    else:
        encoded = np.hstack([_centred(z), _biases(z, grid)])
    return np.ascontiguousarray(encoded, dtype=np.float32)


def interpolation(grid: np.ndarray, temperature: float) -> np.ndarray | None:
    """`(K,)` weights that interpolate a grid column at T linearly (two neighbours), or None outside the grid."""
    if not grid[0] <= temperature <= grid[-1]:
        return None
    weights = np.zeros(len(grid))
    right = int(np.searchsorted(grid, temperature))
    if grid[right] == temperature:
        weights[right] = 1.0
    else:
        left = right - 1
        share = (temperature - grid[left]) / (grid[right] - grid[left])
        weights[left], weights[right] = 1.0 - share, share
    return weights


def encode_queries(family: FamilyKey, x: np.ndarray, temperature: float, grid: np.ndarray) -> np.ndarray:
    """`(q, C)` float64 query logits -> `(q, D)` float32 query vectors (for ce, T within the grid)."""
    name, _ = family
    if name != "ce":
        return encode_items((name, temperature if name == "js" else None), x, grid)
    weights = interpolation(grid, temperature)
    assert weights is not None
    p = np.exp(log_softmax(x, temperature))
    return np.ascontiguousarray(np.hstack([p, np.broadcast_to(-weights, (len(x), len(grid)))]), dtype=np.float32)


# -- structures -----------------------------------------------------------------------------------------------


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


def row_hashes(vectors: np.ndarray) -> np.ndarray:
    """`(n, C)` float32 -> `(n,)` uint64: a seeded multiply-add hash of each row's bits, to tell which rows changed
    since a build (a changed row keeps its hash with probability about 2^-64)."""
    bits = np.ascontiguousarray(vectors, dtype=np.float32).view(np.uint32).astype(np.uint64)
    weights = np.random.default_rng(0x5EED).integers(1, 2**63, vectors.shape[1], dtype=np.uint64) | np.uint64(1)
    with np.errstate(over="ignore"):
        mixed = bits * weights  # wraps modulo 2^64
        hashes: np.ndarray = mixed.sum(axis=1, dtype=np.uint64)
        hashes ^= hashes >> np.uint64(31)
    return hashes


# -- label maps -------------------------------------------------------------------------------------------------


class LabelMap:
    """Which current row each label of the built structures is (-1: deleted or replaced since the build), and
    which label each row is (-1: written since, in the delta that searches scan exactly).

    Rows move as `FaissIndex` moves them (a delete moves the last row into the hole); the caller serialises
    writes.
    """

    def __init__(self, label_rows: np.ndarray, num_rows: int) -> None:
        self.label_rows = label_rows
        self.row_labels = np.full(num_rows, -1, np.int64)
        valid = label_rows >= 0
        self.row_labels[label_rows[valid]] = np.flatnonzero(valid)
        self._delta: np.ndarray | None = None
        self._live: np.ndarray | None = None

    @property
    def num_stale(self) -> int:
        return int(np.count_nonzero(self.label_rows < 0))

    def delta_mask(self) -> np.ndarray:
        """`(n,)` bool: rows no structure covers."""
        if self._delta is None:
            self._delta = self.row_labels < 0
        return self._delta

    def live_labels(self) -> np.ndarray | None:
        """Packed bitmap of the labels still valid, or None when every label is."""
        if self._live is None and self.num_stale:
            self._live = np.packbits(self.label_rows >= 0, bitorder="little")
        return self._live

    def _changed(self) -> None:
        self._delta = self._live = None

    def replaced(self, positions: Sequence[int]) -> None:
        rows = np.asarray(positions, np.int64)
        labels = self.row_labels[rows]
        self.label_rows[labels[labels >= 0]] = -1
        self.row_labels[rows] = -1
        self._changed()

    def appended(self, count: int) -> None:
        self.row_labels = np.concatenate([self.row_labels, np.full(count, -1, np.int64)])
        self._changed()

    def deleted(self, position: int, last: int) -> None:
        label = self.row_labels[position]
        if label >= 0:
            self.label_rows[label] = -1
        moved = self.row_labels[last]
        self.row_labels[position] = moved
        if moved >= 0:
            self.label_rows[moved] = position
        self.row_labels = self.row_labels[:last]
        self._changed()


# -- recall -----------------------------------------------------------------------------------------------------


@dataclass
class Calibration:
    """Recall@10 of one metric at one T, at every step of the ladder, measured against the exact scan."""

    metric: str
    temperature: float | None
    steps: list[tuple[int, int, float]]  # (efSearch or nprobe, R, recall@10)
    queries: int
    items: int
    seconds: list[float] = field(default_factory=list)  # per query of each step, searched as one batch
    exact_seconds: float = math.inf  # per query of the exact scan, searched as one batch
    measured_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def beats_exact_in_batches(self, step: int) -> bool:
        """Whether the step searched a batch faster than the exact scan did (flat BLAS scans of batches are fast)."""
        return step >= len(self.seconds) or self.seconds[step] < self.exact_seconds

    def first_reaching(self, target: float) -> int | None:
        """Index of the cheapest step whose recall reaches `target`, or None."""
        return next((i for i, (_, _, recall) in enumerate(self.steps) if recall >= target - 1e-12), None)


def recall_at_10(approximate: list[list[str]], exact: list[list[str]], own: list[str]) -> float:
    """Mean share of each query's exact top 10 found by the approximate search, each query's own item left out of
    both lists (stored items as queries, searched for 11)."""
    hits = []
    for me, found, truth in zip(own, approximate, exact, strict=True):
        true_ten = [item for item in truth if item != me][:RECALL_K]
        if true_ten:
            hits.append(len(set(found) & set(true_ten)) / len(true_ten))
    return float(np.mean(hits)) if hits else 1.0


def calibration_points(options: AnnOptions, metric: str) -> list[float | None]:
    """The temperatures a metric's recall is measured at: none for l2, l2_centered and cosine; each declared T for
    js and tri; for ce and kl every grid T and each interval's geometric midpoint (interpolation is worst there)."""
    family = _FAMILY_OF[metric]
    if family in ("l2", "l2_centered", "cosine"):
        return [None]
    if family == "js":
        return [float(t) for t in sorted(set(options.temperatures))]
    grid: list[float] = options.grid().tolist()
    points: list[float | None] = [*sorted(grid + [math.sqrt(a * b) for a, b in zip(grid, grid[1:], strict=False)])]
    return points


def family_of(metric: str, temperature: float) -> FamilyKey:
    family = _FAMILY_OF[metric]
    return (family, temperature if family == "js" else None)


def sample_rows(num_rows: int, size: int = CALIBRATION_QUERIES, seed: int = 0) -> np.ndarray:
    """A seeded sample of row positions, ascending."""
    size = min(size, num_rows)
    return np.sort(np.random.default_rng(seed).choice(num_rows, size, replace=False))


def recall_points(options: AnnOptions) -> list[tuple[str, float | None]]:
    """Every (metric, T) whose recall an index measures (kl shares ce's: it ranks the same)."""
    points: list[tuple[str, float | None]] = []
    for metric in options.metrics:
        if metric == "kl" and "ce" in options.metrics:
            continue
        points.extend((metric, t) for t in calibration_points(options, metric))
    return points


def bracket(options: AnnOptions, metric: str, temperature: float) -> list[float | None] | None:
    """The calibration temperatures whose recall bounds a search's at T, or None when T is not served."""
    family = _FAMILY_OF.get(metric)
    if family is None or metric not in options.metrics:
        return None
    if family in ("l2", "l2_centered", "cosine"):
        return [None]
    if family == "js":
        return [temperature] if temperature in options.temperatures else None
    grid = options.grid()
    weights = interpolation(grid, temperature)
    if weights is None:
        return None
    used: list[float] = grid[weights > 0].tolist()
    if len(used) == 1:
        return [used[0]]
    return [used[0], math.sqrt(used[0] * used[1]), used[1]]


# -- the installed state ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """How one search finds candidates: a structure, its search effort, R candidates to re-rank, and the recall@10
    that this was measured to reach (NaN while being measured)."""

    structure: Structure
    param: int
    candidates: int
    recall: float
    grid: np.ndarray

    def search(self, queries: np.ndarray, temperature: float, k: int, labels: np.ndarray | None) -> np.ndarray:
        """Labels `(q, max(R, 2k))` of the candidates of `queries` `(q, C)` float64 logits."""
        encoded = encode_queries(self.structure.family, queries, temperature, self.grid)
        return self.structure.search(encoded, max(self.candidates, 2 * k), self.param, labels)


@dataclass
class Approximate:
    """Structures built over one snapshot of an index, where their labels are now, and their measured recall.

    Attributes:
        options: what was built.
        structures: by (family, T).
        labels: labels <-> current rows.
        num_built: items in the snapshot.
        built_at: when the build finished (ISO 8601).
        calibrations: by (metric, T) (T None for the metrics without one); kl's are ce's when both are served.
        label_ids: the id of each label's item.
        label_hashes: `(L,)` uint64 `row_hashes` of each label's logits when built.
    """

    options: AnnOptions
    structures: dict[FamilyKey, Structure]
    labels: LabelMap
    num_built: int
    label_ids: list[str] = field(default_factory=list)
    label_hashes: np.ndarray = field(default_factory=lambda: np.empty(0, np.uint64))
    built_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    calibrations: dict[tuple[str, float | None], Calibration] = field(default_factory=dict)

    def calibration_key(self, metric: str) -> str:
        return "ce" if metric == "kl" and "ce" in self.options.metrics else metric

    def plan(self, metric: str, temperature: float, target: float | None, num_queries: int = 1) -> Plan | None:
        """The cheapest measured way to reach `target` recall (the index's by default) for `metric` at T, or None
        when none does, when nothing serves that metric and T, while it is not measured yet, or for a batch
        (`BATCH_QUERIES` queries or more) when that step searched a batch more slowly than the exact scan."""
        points = bracket(self.options, metric, temperature)
        structure = self.structures.get(family_of(metric, temperature)) if points is not None else None
        if points is None or structure is None:
            return None
        key = self.calibration_key(metric)
        found = [self.calibrations.get((key, t)) for t in points]
        calibrations = [c for c in found if c is not None]
        if len(calibrations) < len(found):
            return None
        wanted = self.options.target_recall if target is None else target
        steps = [c.first_reaching(wanted) for c in calibrations]
        if any(step is None for step in steps):
            return None
        step = max(s for s in steps if s is not None)
        if num_queries >= BATCH_QUERIES and not all(c.beats_exact_in_batches(step) for c in calibrations):
            return None
        param, candidates = max((c.steps[min(step, len(c.steps) - 1)][:2] for c in calibrations), key=lambda s: s[1])
        recall = min(c.steps[min(step, len(c.steps) - 1)][2] for c in calibrations)
        return Plan(structure, param, candidates, recall, self.options.grid())

    def steps(self, family: FamilyKey) -> list[Plan]:
        """Every ladder step of a family's structure as a plan (recall unknown), for calibration."""
        structure = self.structures[family]
        nlist = int(getattr(structure.index, "nlist", 1))
        grid = self.options.grid()
        return [Plan(structure, p, r, math.nan, grid) for p, r in ladder(self.options.index_type, nlist)]

    def needs_rebuild(self, num_rows: int, fraction: float, minimum: int) -> bool:
        """Whether enough was written since the build (rows in the delta, labels gone stale) to build again."""
        changed = int(np.count_nonzero(self.labels.delta_mask())) + self.labels.num_stale
        return changed >= max(minimum, fraction * max(self.num_built, 1)) or (self.num_built == 0 and num_rows > 0)
