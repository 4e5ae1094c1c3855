"""Add, replace, read, page through and delete stored items."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from ..deps import ClassifierDep, IndexDep, MetricsDep, SettingsDep, require_write_key
from ..inputs import check_batch, resolve_vectors
from ..routing import OffLoopRoute
from ..schemas import WRITE_RESPONSES, DeleteResponse, ErrorResponse, ItemOut, ItemsPage, UpsertRequest, UpsertResponse

router = APIRouter(route_class=OffLoopRoute, prefix="/items", tags=["items"])
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorResponse, "description": "No item with this id"}}


@router.post("", dependencies=[Depends(require_write_key)], responses=WRITE_RESPONSES)
def upsert_items(
    body: UpsertRequest, classifier: ClassifierDep, index: IndexDep, settings: SettingsDep, metrics: MetricsDep
) -> UpsertResponse:
    """Insert or replace items given by logits or image; all of them are stored, or none."""
    check_batch(len(body.items), settings, "items")
    vectors = resolve_vectors(body.items, classifier, index, settings, where="items")
    upserted = index.upsert([item.id for item in body.items], vectors, [item.metadata for item in body.items])
    metrics.items.labels(index.name).inc(upserted)
    return UpsertResponse(upserted=upserted, count=index.count())


@router.get("")
def list_items(
    index: IndexDep,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ItemsPage:
    """A page of items in the order they were added (a replaced item keeps its place), and the total count."""
    items = [
        ItemOut(id=item.id, logits=item.logits.tolist(), metadata=item.metadata) for item in index.list(offset, limit)
    ]
    return ItemsPage(items=items, count=index.count())


@router.get("/{item_id:path}", responses=_NOT_FOUND)
def get_item(item_id: str, index: IndexDep) -> ItemOut:
    """One stored item: its logits and metadata."""
    item = index.get(item_id)
    return ItemOut(id=item.id, logits=item.logits.tolist(), metadata=item.metadata)


@router.delete("/{item_id:path}", dependencies=[Depends(require_write_key)], responses=_NOT_FOUND | WRITE_RESPONSES)
def delete_item(item_id: str, index: IndexDep) -> DeleteResponse:
    """Remove one item."""
    index.delete(item_id)
    return DeleteResponse(deleted=item_id)
