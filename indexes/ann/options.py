"""What an approximate index holds: its options, the families of structures, and the ladder of search effort."""

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InvalidInputError

INDEX_TYPES = ("hnsw", "ivf")
CODECS = ("float32", "float16", "sq8")
#: Where the float32 originals live (`"disk"`: a memory-mapped file), and the copy approximate searches re-rank.
ORIGINALS = ("memory", "disk")
RERANK_CODECS = ("float32", "float16")
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
#: Calibration queries are stored rows plus seeded Gaussian noise of this many times each class's standard deviation
#: (`recall.calibration_queries`).
CALIBRATION_NOISE = 0.3
RECALL_K = 10
#: The most results FAISS's GPU indexes return per query (as `faiss_index.GPU_MAX_K`).
GPU_MAX_K = 2048
#: Rows encoded at a time.
ENCODE_CHUNK = 1 << 15
#: Rows added to a structure at a time while it is built (a build can be cancelled between chunks).
BUILD_CHUNK = 16_384
#: Ladder of search effort: efSearch 16·2^i (HNSW, 8 steps after a first with R = 16) or nprobe 2^i (IVF, up to
#: every list), re-ranking R candidates (`ladder`).
LADDER_STEPS = 8
CANDIDATES = 32

FamilyKey = tuple[str, float | None]  # (family, T for js; None for the others)


def family_of(metric: str, temperature: float) -> FamilyKey:
    family = _FAMILY_OF[metric]
    return (family, temperature if family == "js" else None)


def ladder(index_type: str, nlist: int) -> list[tuple[int, int]]:
    """The (efSearch or nprobe, R) steps a structure is calibrated on, cheapest first.

    The search effort is the knob: at a fixed efSearch or nprobe, re-ranking more than about 3k candidates gains
    almost nothing (measured at N = 100k, C = 100: ce recall@10 0.966 at efSearch 128 with R = 16 and R = 128
    alike), while the re-rank's cost grows with R. HNSW searches with efSearch at least R, so the first step (16,
    16) is the cheapest search there is: efSearch and R both 2k (20 for k = 10); at N = 200k, C = 1000 it reached
    ce recall@10 0.985-0.995 at T 1 to 4, and halves the re-rank, which is most of a search at that C. The last
    HNSW steps widen R for quantised codes and for temperatures between grid points.
    """
    if index_type == "hnsw":
        return [(16, 16)] + [(16 * 2**i, CANDIDATES) for i in range(LADDER_STEPS - 2)] + [(1024, 64), (2048, 128)]
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
        originals: `"memory"`, or `"disk"`: the float32 logits in a memory-mapped file, so that resident memory is
            dominated by the candidate structures (exact scans then read the file, through the page cache).
        rerank_codec: the rows approximate searches re-rank: the `"float32"` originals, or a `"float16"` copy in
            memory (with originals on disk), after which the k answers' distances are computed from the originals.
        m: HNSW links per node (default 16; 32 for ce and kl, and from 500 classes).
        ef_construction: HNSW build effort (default 64; 128 for ce and kl).
        nlist: IVF lists (default about 2√N, a power of two, at least 39 rows per list).
    """

    index_type: str
    metrics: tuple[str, ...] = DEFAULT_METRICS
    temperatures: tuple[float, ...] = (1.0,)
    codec: str = "float32"
    target_recall: float = 0.95
    originals: str = "memory"
    rerank_codec: str = "float32"
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
        if self.originals not in ORIGINALS:
            raise InvalidInputError(f"originals {self.originals!r}: choose one of {', '.join(ORIGINALS)}")
        if self.rerank_codec not in RERANK_CODECS:
            raise InvalidInputError(f"rerank_codec {self.rerank_codec!r}: choose one of {', '.join(RERANK_CODECS)}")
        if self.rerank_codec == "float16" and self.originals == "memory":
            raise InvalidInputError(
                'rerank_codec "float16" saves memory only when the float32 originals are on disk: add '
                '"originals": "disk", or re-rank from the originals ("rerank_codec": "float32")'
            )
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
            "originals": self.originals,
            "rerank_codec": self.rerank_codec,
            "m": self.m,
            "ef_construction": self.ef_construction,
            "nlist": self.nlist,
        }
