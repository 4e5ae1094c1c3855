"""Does a search metric follow the exact cross-entropy ranking for one query? Its top-k against CE's, live."""

import dataclasses
from dataclasses import dataclass

import numpy as np

from indexes.metrics import SEARCH_METRICS, exact_distances
from indexes.store import Filter, VectorStore

from .errors import EvaluationConfigError
from .ranking import spearman_rows
from .saturation import order_keys


@dataclass(frozen=True)
class Agreement:
    """How one query's top-k under `metric` compares with its exact top-k under `reference`.

    Attributes:
        metric_ids, reference_ids: the two top-k lists, closest first (shorter than k when fewer items match).
        shared: how many items are in both lists.
        overlap: `shared / len(reference_ids)` in [0, 1] (1.0 when no item matches at all).
        spearman: Spearman's rank correlation of the two metrics' exact values over the items of either list
            (None when fewer than two items, or one side is constant).
        compared: how many items that correlation is over (the union of the two lists).
        compared_ids, metric_values, reference_values: those items, and both measures' exact values for each.
    """

    metric: str
    reference: str
    temperature: float
    k: int
    metric_ids: list[str]
    reference_ids: list[str]
    shared: int
    overlap: float
    spearman: float | None
    compared: int
    compared_ids: list[str] = dataclasses.field(default_factory=list)
    metric_values: list[float] = dataclasses.field(default_factory=list)
    reference_values: list[float] = dataclasses.field(default_factory=list)


def check_agreement(
    store: VectorStore,
    query: np.ndarray,
    k: int,
    metric: str = "l2",
    reference: str = "ce",
    temperature: float = 1.0,
    filter: Filter | None = None,
) -> Agreement:
    """Compare the top-k of `query` under `metric` with its exact top-k under `reference` (both from `store`).

    Args:
        store: the index; both searches are its exact flat searches.
        query: `(C,)` logits.
        k: neighbours per list.
        metric, reference: names from `SEARCH_METRICS`.
        temperature: softmax temperature of the divergences (ignored by l2, l2_centered and cosine).
        filter: a filter (`indexes.filters`), applied to both searches.
    """
    for name in (metric, reference):
        if name not in SEARCH_METRICS:
            raise EvaluationConfigError(f"unknown metric {name!r}; choose one of {', '.join(SEARCH_METRICS)}")
    queries = np.asarray(query, dtype=np.float64)[None, :]
    found = [
        [
            n.id
            for n in store.search(
                queries, k, metric=name, temperature=temperature, filter=filter, exact=True
            ).neighbors[0]
        ]
        for name in (metric, reference)
    ]
    metric_ids, reference_ids = found
    union = list(dict.fromkeys([*metric_ids, *reference_ids]))
    shared = len(set(metric_ids) & set(reference_ids))
    spearman = None
    values = [np.empty((1, 0)), np.empty((1, 0))]
    if union:
        items = np.stack([store.get(item_id).logits for item_id in union])[None]  # (1, m, C)
        values = [exact_distances(name, queries, items, temperature) for name in (metric, reference)]
    if len(union) >= 2:
        repeated = np.repeat(queries, len(union), axis=0)
        keys = [  # js and tri ranked by their true order where they saturate (`saturation.order_keys`)
            order_keys(name, value[0], repeated, items[0], temperature)
            for name, value in zip((metric, reference), values, strict=True)
        ]
        rho = float(spearman_rows(keys[0][None], keys[1][None])[0])
        spearman = None if np.isnan(rho) else rho
    return Agreement(
        metric=metric,
        reference=reference,
        temperature=temperature,
        k=k,
        metric_ids=metric_ids,
        reference_ids=reference_ids,
        shared=shared,
        overlap=shared / len(reference_ids) if reference_ids else 1.0,
        spearman=spearman,
        compared=len(union),
        compared_ids=union,
        metric_values=values[0][0].tolist(),
        reference_values=values[1][0].tolist(),
    )
