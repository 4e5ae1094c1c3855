"""`confusion`: the confusion matrix of stored label against predicted class, and for each cell its most typical
items: those whose log-probabilities at T are closest (L2) to the cell's mean log-probabilities."""

import numpy as np

from indexes.divergences import log_softmax

from .options import AnalysisOptions, AnalysisResult
from .reading import Selection, class_labels

#: Typical items shown per cell.
TYPICAL = 3


def confusion(items: Selection, options: AnalysisOptions, labels: list[str] | None, num_classes: int) -> AnalysisResult:
    given, known = class_labels(items, options.label_field, labels, num_classes)
    rows_known = np.flatnonzero(known)
    log_p = (
        log_softmax(items.logits[rows_known], options.temperature) if len(rows_known) else np.empty((0, num_classes))
    )
    truth, predicted = given[rows_known], items.logits[rows_known].argmax(axis=1)
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (truth, predicted), 1)
    cells = []
    for label, guess in zip(*np.nonzero(matrix), strict=True):
        members = np.flatnonzero((truth == label) & (predicted == guess))
        centre = log_p[members].mean(axis=0)
        closest = members[np.argsort(np.linalg.norm(log_p[members] - centre, axis=1), kind="stable")[:TYPICAL]]
        cells.append(
            {
                "label": int(label),
                "predicted": int(guess),
                **({"label_name": labels[label], "predicted_label": labels[guess]} if labels else {}),
                "count": int(matrix[label, guess]),
                "correct": bool(label == guess),
                "typical": [items.ids[int(rows_known[m])] for m in closest],
            }
        )
    cells.sort(key=lambda cell: (cell["correct"], -cell["count"], cell["label"], cell["predicted"]))
    summary = {
        "label_field": options.label_field,
        "labelled": int(len(rows_known)),
        "accuracy": float(np.trace(matrix) / max(1, len(rows_known))),
        "matrix": matrix.tolist(),
        "labels": labels,
    }
    return AnalysisResult("confusion", options.temperature, len(items), cells[: options.limit], summary)
