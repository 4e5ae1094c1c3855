"""`uncertain`: the items the classifier is least sure about at T (lowest confidence or margin, highest entropy)."""

import numpy as np

from indexes.errors import InvalidInputError
from indexes.masks import derived_values

from .options import AnalysisOptions, AnalysisResult
from .reading import Selection

BY = ("confidence", "margin", "entropy")


def uncertain(items: Selection, options: AnalysisOptions, labels: list[str] | None) -> AnalysisResult:
    if options.by not in BY:
        raise InvalidInputError(f"by {options.by!r}: rank uncertain items by confidence, margin or entropy")
    t = options.temperature
    values = {field: derived_values(field, items.logits, t) for field in BY}
    predicted = items.logits.argmax(axis=1) if len(items) else np.empty(0, np.int64)
    key = -values["entropy"] if options.by == "entropy" else values[options.by]
    order = np.argsort(key, kind="stable")[: options.limit]
    rows = [
        {
            "id": items.ids[r],
            "score": float(values[options.by][r]),
            "confidence": float(values["confidence"][r]),
            "margin": float(values["margin"][r]),
            "entropy": float(values["entropy"][r]),
            "predicted": int(predicted[r]),
            **({"predicted_label": labels[int(predicted[r])]} if labels else {}),
            "metadata": items.metadata[r],
        }
        for r in order.tolist()
    ]
    return AnalysisResult("uncertain", t, len(items), rows, {"by": options.by})
