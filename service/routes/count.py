"""Counting items: how many match a filter, and facet counts per metadata value or predicted class."""

from fastapi import APIRouter

from indexes.facets import check_group_by

from ..http.deps import ClassifierDep, IndexDep
from ..http.listing import class_filter
from ..http.routing import OffLoopRoute
from ..schemas import CountRequest, CountResponse, Group

router = APIRouter(route_class=OffLoopRoute, prefix="/count", tags=["items"])


@router.post("", response_model=CountResponse, response_model_exclude_none=True)
def count_items(body: CountRequest, index: IndexDep, classifier: ClassifierDep) -> CountResponse:
    """How many items match the filter; with `group_by`, how many per value of a metadata key or predicted class."""
    group_by = check_group_by(body.group_by)
    facets = index.facets(class_filter(body.filter, classifier), group_by, body.temperature, body.limit)
    if facets.groups is None:
        return CountResponse(count=facets.matched)
    labels = classifier.spec.labels if group_by == "predicted" else None
    groups = [
        Group(value=value, count=count, label=labels[value] if labels and isinstance(value, int) else None)
        for value, count in facets.groups
    ]
    missing = None if group_by == "predicted" else facets.missing
    return CountResponse(count=facets.matched, groups=groups, missing=missing, more=facets.more)
