"""`label-issues`: items whose stored label disagrees with what the classifier and their neighbours say.

The classifier's side is cleanlab's confident learning (`cleanlab.filter.find_label_issues` on `softmax(z / T)`,
ranked by self-confidence); the neighbours' side is the share of an item's k nearest items under a divergence at T
(`js` by default) that hold its label, and the label most of them hold.
"""

from collections import Counter

import numpy as np

from indexes.divergences import log_softmax
from indexes.errors import InvalidInputError
from indexes.store import Filter, VectorStore

from ..errors import AnalysisUnavailableError
from .neighbours import nearest_others
from .options import AnalysisOptions, AnalysisResult
from .reading import Selection, class_labels, class_of


def label_issues(
    index: VectorStore, items: Selection, options: AnalysisOptions, labels: list[str] | None, filter: Filter | None
) -> AnalysisResult:
    try:
        from cleanlab.filter import find_label_issues
        from cleanlab.rank import get_label_quality_scores
    except ImportError as exc:
        raise AnalysisUnavailableError(
            "label-issues needs cleanlab: pip install 'logit-search[analyses]' where the service runs"
        ) from exc

    num_classes = index.dim
    given, known = class_labels(items, options.label_field, labels, num_classes)
    rows_known = np.flatnonzero(known)
    if len(rows_known) < 2 or len(np.unique(given[rows_known])) < 2:
        raise InvalidInputError("label-issues needs labelled items of at least two classes among those selected")
    probabilities = np.exp(log_softmax(items.logits[rows_known], options.temperature))
    labelled = given[rows_known]
    ranked = find_label_issues(labelled, probabilities, return_indices_ranked_by="self_confidence")
    quality = get_label_quality_scores(labelled, probabilities, method="self_confidence")
    shown = [int(rows_known[i]) for i in ranked[: options.limit]]
    metric = options.metric or "js"
    others = nearest_others(index, items, shown, options.k, metric, options.temperature, filter)
    position = {int(row): i for i, row in enumerate(rows_known)}
    result = []
    for row, neighbours in zip(shown, others, strict=True):
        theirs = [class_of(n.metadata.get(options.label_field), labels, num_classes) for n in neighbours]
        held = Counter(c for c in theirs if c is not None)
        agreeing = held.get(int(given[row]), 0) / max(1, sum(held.values()))
        majority = held.most_common(1)[0][0] if held else None
        predicted = int(probabilities[position[row]].argmax())
        result.append(
            {
                "id": items.ids[row],
                "score": float(quality[position[row]]),
                "label": int(given[row]),
                "predicted": predicted,
                **({"label_name": labels[int(given[row])], "predicted_label": labels[predicted]} if labels else {}),
                "neighbour_agreement": agreeing,
                "neighbour_label": majority,
                "metadata": items.metadata[row],
            }
        )
    summary = {
        "label_field": options.label_field,
        "labelled": int(len(rows_known)),
        "issues": int(len(ranked)),
        "method": "cleanlab find_label_issues (self_confidence) at T; neighbours by " + metric,
        "k": options.k,
    }
    return AnalysisResult("label-issues", options.temperature, len(items), result, summary)
