"""The analyses by name, and running one on an index."""

from collections.abc import Callable

from indexes.errors import InvalidInputError
from indexes.store import VectorStore

from .calibration import calibration
from .confusion import confusion
from .duplicates import near_duplicates
from .label_issues import label_issues
from .matrix import distance_matrix
from .options import AnalysisOptions, AnalysisResult
from .projection import projection
from .reading import Selection, read_items
from .uncertain import uncertain

Runner = Callable[[VectorStore, AnalysisOptions, list[str] | None], AnalysisResult]


def _reading(options: AnalysisOptions, index: VectorStore) -> Selection:
    return read_items(index, options.filter, options.temperature, options.max_items)


ANALYSES: dict[str, Runner] = {
    "label-issues": lambda index, o, labels: label_issues(index, _reading(o, index), o, labels, o.filter),
    "near-duplicates": lambda index, o, labels: near_duplicates(index, _reading(o, index), o, o.filter),
    "uncertain": lambda index, o, labels: uncertain(_reading(o, index), o, labels),
    "confusion": lambda index, o, labels: confusion(_reading(o, index), o, labels, index.dim),
    "distance-matrix": lambda index, o, labels: distance_matrix(
        index, None if o.ids is not None else _reading(o, index), o
    ),
    "calibration": lambda index, o, labels: calibration(index, _reading(o, index), o, o.filter),
    "projection": lambda index, o, labels: projection(_reading(o, index), o, labels, index.dim),
}


def run_analysis(kind: str, index: VectorStore, options: AnalysisOptions, labels: list[str] | None) -> AnalysisResult:
    """Run the analysis `kind` on `index` (the items matching `options.filter`); `labels`: the model's class names.

    Raises:
        InvalidInputError: an unknown kind, options it cannot use, or more matching items than `options.max_items`.
    """
    runner = ANALYSES.get(kind)
    if runner is None:
        raise InvalidInputError(f"no analysis {kind!r}: choose one of {', '.join(ANALYSES)}")
    if not 1 <= options.limit <= 100_000 or not 1 <= options.k <= 1000:
        raise InvalidInputError("limit must be 1..100000 and k 1..1000")
    return runner(index, options, labels)
