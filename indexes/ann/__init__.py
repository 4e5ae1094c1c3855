"""Approximate candidate structures (HNSW, IVF) that follow each metric, and their recall measured on the index.

Each metric becomes L2 or an inner product on an encoding of the logits (DESIGN.md, "Approximate indexes"):

- `l2`: the logits; `l2_centered`: the centred logits; `cosine`: unit rows (L2 between unit rows orders like
  cosine).
- `ce` and `kl`, every T of a range at once: with centred logits `z_c` and `b_T(z) = T·logsumexp(z_c / T)`,
  `T·CE(p_T, q_T) = b_T − p_T·z_c` exactly (Σp = 1), so one T-free structure over `[z_c, b_T1, …, b_TK]` (a grid
  of temperatures) queried with `[p_T, −w]` (w: T's linear-interpolation weights on the grid) orders items by
  −T·CE, exactly at grid points. HNSW searches it as L2 after the extra-coordinate transform (Bachrach et al.,
  2014), over a graph whose links are built between the items' Hellinger vectors `√softmax(z / T_r)`
  (`structures.routing_temperature`): links by the centred logits follow the unlikely classes and miss at low T.
  IVF routes it by inner product (L2 routing of such vectors sends every query to the smallest centroids).
  `kl = ce − H(p)` ranks the same.
- `js` and `tri` at one declared T: `√softmax(z / T)` (unit rows, in the Hellinger order that bounds both).
- `kl_reverse` and undeclared temperatures have no structure: they are answered by the exact flat scan.

A structure returns candidates only; the exact float64 re-rank (`indexes.rerank`) computes their distances, so
distances are exact and only membership is approximate. How approximate is measured, never assumed: `calibrate`
searches a seeded sample of stored items, perturbed by seeded noise (`calibration_queries`: unperturbed, they
measured optimistic against held-out queries), with every step of a ladder of search parameters (efSearch or
nprobe, and R candidates re-ranked) and records each step's recall@10 against the exact scan; a search takes the
first step whose recall reaches its target.
"""

from .encodings import encode_items, encode_queries, interpolation, row_hashes
from .options import (
    APPROXIMATE_METRICS,
    BATCH_QUERIES,
    CODECS,
    DEFAULT_METRICS,
    FAMILY_METRICS,
    GPU_MAX_K,
    INDEX_TYPES,
    ORIGINALS,
    RECALL_K,
    RERANK_CODECS,
    AnnOptions,
    FamilyKey,
    family_of,
    ladder,
)
from .recall import (
    Calibration,
    bracket,
    calibration_points,
    calibration_queries,
    recall_at_10,
    recall_points,
    sample_rows,
)
from .state import Approximate, LabelMap, Plan
from .structures import Structure, build_structure, default_nlist, routing_temperature

__all__ = [
    "APPROXIMATE_METRICS",
    "BATCH_QUERIES",
    "CODECS",
    "DEFAULT_METRICS",
    "FAMILY_METRICS",
    "GPU_MAX_K",
    "INDEX_TYPES",
    "ORIGINALS",
    "RECALL_K",
    "RERANK_CODECS",
    "AnnOptions",
    "Approximate",
    "Calibration",
    "FamilyKey",
    "LabelMap",
    "Plan",
    "Structure",
    "bracket",
    "build_structure",
    "calibration_points",
    "calibration_queries",
    "default_nlist",
    "encode_items",
    "encode_queries",
    "family_of",
    "interpolation",
    "ladder",
    "recall_at_10",
    "recall_points",
    "routing_temperature",
    "row_hashes",
    "sample_rows",
]
