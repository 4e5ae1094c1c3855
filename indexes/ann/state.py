"""An installed build: where its labels are now, how a search is planned, and when to build again."""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from .encodings import encode_queries
from .options import BATCH_QUERIES, AnnOptions, FamilyKey, family_of, ladder
from .recall import Calibration, bracket
from .structures import Structure


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
        self._num_stale: int | None = None
        self._num_delta: int | None = None

    # Searches read these; they are computed once after each write (O(n)), not per search.
    @property
    def num_stale(self) -> int:
        """Labels deleted or replaced since the build."""
        if self._num_stale is None:
            self._num_stale = int(np.count_nonzero(self.label_rows < 0))
        return self._num_stale

    @property
    def num_delta(self) -> int:
        """Rows no structure covers."""
        if self._num_delta is None:
            self._num_delta = int(np.count_nonzero(self.delta_mask()))
        return self._num_delta

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
        self._num_stale = self._num_delta = None

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
        changed = self.labels.num_delta + self.labels.num_stale
        return changed >= max(minimum, fraction * max(self.num_built, 1)) or (self.num_built == 0 and num_rows > 0)
