"""`near-duplicates`: pairs of items whose divergence at T (js by default, or kl, l2, ...) is at most a threshold,
found with the index's own k-nearest search, and the groups they join into."""

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from indexes.store import Filter, VectorStore

from .neighbours import nearest_others
from .options import AnalysisOptions, AnalysisResult
from .reading import Selection

#: js in nats below which two outputs count as duplicates unless a threshold is given (ln 2 is the largest js).
DEFAULT_THRESHOLD = 1e-4


def near_duplicates(
    index: VectorStore, items: Selection, options: AnalysisOptions, filter: Filter | None
) -> AnalysisResult:
    metric = options.metric or "js"
    threshold = DEFAULT_THRESHOLD if options.threshold is None else options.threshold
    position = {item_id: row for row, item_id in enumerate(items.ids)}
    others = nearest_others(index, items, list(range(len(items))), options.k, metric, options.temperature, filter)
    pairs: dict[tuple[int, int], float] = {}
    for row, neighbours in enumerate(others):
        for hit in neighbours:
            other = position.get(hit.id)
            if other is not None and hit.distance <= threshold:
                pairs[(min(row, other), max(row, other))] = hit.distance
    ranked = sorted(pairs.items(), key=lambda pair: (pair[1], pair[0]))
    rows = [{"id": items.ids[a], "other": items.ids[b], "distance": float(d)} for (a, b), d in ranked[: options.limit]]
    groups: list[list[str]] = []
    if pairs:
        a, b = np.array(list(pairs)).T
        graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(len(items), len(items)))
        _, component = connected_components(graph, directed=False)
        members: dict[int, list[str]] = {}
        for row in sorted({int(r) for pair in pairs for r in pair}):
            members.setdefault(int(component[row]), []).append(items.ids[row])
        groups = sorted(members.values(), key=lambda group: (-len(group), group[0]))
    summary = {
        "metric": metric,
        "threshold": threshold,
        "k": options.k,
        "pairs": len(pairs),
        "groups": groups[: options.limit],
        "note": "pairs among each item's k nearest: raise k when groups are larger than k + 1",
    }
    return AnalysisResult("near-duplicates", options.temperature, len(items), rows, summary)
