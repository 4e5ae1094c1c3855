"""`projection`: a 2-D map of the items' outputs for the page — the first two principal components of
`log_softmax(z / T)`, with what a map is coloured by (label, predicted class, confidence), column by column."""

import numpy as np

from indexes.divergences import log_softmax

from .options import AnalysisOptions, AnalysisResult
from .reading import Selection, class_labels

#: Rows of log-probabilities folded into the covariance at once.
_BLOCK = 20_000


def projection(
    items: Selection, options: AnalysisOptions, labels: list[str] | None, num_classes: int
) -> AnalysisResult:
    """PCA by the eigenvectors of the `(C, C)` covariance (accumulated block by block: memory O(C² + block·C))."""
    n = len(items)
    mean = np.zeros(num_classes)
    for start in range(0, n, _BLOCK):
        mean += log_softmax(items.logits[start : start + _BLOCK], options.temperature).sum(axis=0)
    mean /= max(n, 1)
    covariance = np.zeros((num_classes, num_classes))
    for start in range(0, n, _BLOCK):
        centred = log_softmax(items.logits[start : start + _BLOCK], options.temperature) - mean
        covariance += centred.T @ centred
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    axes = eigenvectors[:, ::-1][:, :2]  # (C, 2), the largest variance first
    points = np.zeros((n, 2))
    confidence = np.zeros(n)
    for start in range(0, n, _BLOCK):
        log_p = log_softmax(items.logits[start : start + _BLOCK], options.temperature)
        points[start : start + _BLOCK] = (log_p - mean) @ axes
        confidence[start : start + _BLOCK] = np.exp(log_p.max(axis=1))
    try:
        given, known = class_labels(items, options.label_field, labels, num_classes)
        label = [int(g) if k else None for g, k in zip(given.tolist(), known.tolist(), strict=True)]
    except ValueError:  # no item holds a label: colour by prediction only
        label = [None] * n
    explained = eigenvalues[::-1][:2] / max(float(eigenvalues.sum()), 1e-300)
    summary = {
        "method": "PCA of log_softmax(z / T)",
        "ids": items.ids,
        "x": np.round(points[:, 0], 5).tolist(),
        "y": np.round(points[:, 1], 5).tolist(),
        "predicted": items.logits.argmax(axis=1).tolist() if n else [],
        "confidence": np.round(confidence, 5).tolist(),
        "label": label,
        "labels": labels,
        "explained_variance": explained.tolist(),
    }
    return AnalysisResult("projection", options.temperature, n, [], summary)
