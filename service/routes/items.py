"""Add, replace, read, page through and delete stored items, and read their thumbnails."""

import hashlib
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from indexes.errors import InvalidInputError
from indexes.pages import ORDERS_HELP as _ORDER_HELP
from indexes.store import Item
from indexes.validation import check_vectors
from models import thumbnail_media_type

from ..errors import ThumbnailNotFoundError
from ..http.deps import ClassifierDep, EntryDep, IndexDep, MetricsDep, SettingsDep, require_write_key
from ..http.inputs import check_batch, decode_vectors, resolve_vectors
from ..http.listing import class_filter, filter_from_query, item_out, list_page
from ..http.responses import model_response
from ..http.routing import OffLoopRoute
from ..schemas import (
    ORDER_PATTERN,
    WRITE_RESPONSES,
    DeletedCount,
    DeleteResponse,
    DeleteWhereRequest,
    Encoding,
    ErrorResponse,
    ItemOut,
    ItemsPage,
    ListRequest,
    UpsertRequest,
    UpsertResponse,
)

router = APIRouter(route_class=OffLoopRoute, prefix="/items", tags=["items"])
EncodingQuery = Annotated[Encoding, Query(description="base64: logits as logits_b64 (little-endian float32)")]


def _item_out(item: Item, encoding: Encoding) -> ItemOut:
    return item_out(item.id, item.logits, item.metadata, encoding)


_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorResponse, "description": "No item with this id"}}


@router.post("", dependencies=[Depends(require_write_key)], responses=WRITE_RESPONSES)
def upsert_items(
    body: UpsertRequest,
    classifier: ClassifierDep,
    index: IndexDep,
    entry: EntryDep,
    settings: SettingsDep,
    metrics: MetricsDep,
) -> UpsertResponse:
    """Insert or replace items given by logits or image (or a batch as columns); all of them are stored, or none."""
    check_batch(body.num_items, settings, "items")
    if body.items is None:  # the columnar form: no object per item
        assert body.ids is not None and body.logits_b64 is not None and body.shape is not None  # `_one_batch`
        vectors = decode_vectors(body.logits_b64, (body.shape[0], body.shape[1]), "logits_b64")
        checked = check_vectors(vectors, index.dim, name="logits_b64")
        upserted = index.upsert(body.ids, checked, body.metadata or [{}] * len(body.ids))
    else:
        thumbnails: list[bytes | None] | None = [] if entry.thumbnails else None
        vectors = resolve_vectors(body.items, classifier, index, settings, where="items", thumbnails=thumbnails)
        ids, metadata = [item.id for item in body.items], [item.metadata for item in body.items]
        upserted = index.upsert(ids, vectors, metadata, thumbnails)
    metrics.items.labels(index.name).inc(upserted)
    return UpsertResponse(upserted=upserted, count=index.count())


_LIST_PARAMETERS = {"offset", "limit", "encoding", "filter", "order", "cursor", "temperature"}


@router.get("", response_model=ItemsPage, response_model_exclude_none=True)
def list_items(
    request: Request,
    index: IndexDep,
    classifier: ClassifierDep,
    offset: Annotated[int, Query(ge=0, description="Skip this many items (insertion order, no filter)")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    encoding: EncodingQuery = "json",
    filter: Annotated[str | None, Query(description="A filter as URL-encoded JSON (docs/filters.md)")] = None,
    order: Annotated[str | None, Query(description=_ORDER_HELP, json_schema_extra={"pattern": ORDER_PATTERN})] = None,
    cursor: Annotated[str | None, Query(description="The `next` of the previous page")] = None,
    temperature: Annotated[float, Query(gt=0, allow_inf_nan=False, description="T of derived fields")] = 1.0,
) -> Response:
    """A page of items matching the filter, in the order asked (insertion by default), and the cursor of the next."""
    unknown = sorted(set(request.query_params) - _LIST_PARAMETERS)
    if unknown:
        raise InvalidInputError(
            f"unknown query parameter(s) {', '.join(unknown)}; this route takes {', '.join(sorted(_LIST_PARAMETERS))}"
        )
    if offset:
        if filter is not None or order is not None or cursor is not None:
            raise InvalidInputError(
                "offset pages every item in insertion order; with a filter, an order or a cursor, page with cursor"
            )
        items = [_item_out(item, encoding) for item in index.list(offset, limit)]
        return model_response(ItemsPage(items=items, count=index.count()))
    page = list_page(index, classifier, filter_from_query(filter), order, cursor, limit, temperature, encoding)
    return model_response(page)


@router.post("/list", response_model=ItemsPage, response_model_exclude_none=True)
def list_items_by_body(body: ListRequest, index: IndexDep, classifier: ClassifierDep) -> Response:
    """`GET .../items` with its arguments in a JSON body (a filter need not be URL-encoded)."""
    page = list_page(
        index, classifier, body.filter, body.order, body.cursor, body.limit, body.temperature, body.encoding
    )
    return model_response(page)


@router.post("/delete", dependencies=[Depends(require_write_key)], responses=WRITE_RESPONSES)
def delete_items(body: DeleteWhereRequest, index: IndexDep, classifier: ClassifierDep) -> DeletedCount:
    """Remove every item matching the filter, all at once (atomic and durable like every write)."""
    if not body.filter and not body.all:
        raise InvalidInputError(
            'an empty filter would delete every item of the index: add "all": true to mean it, or give a filter'
        )
    deleted = index.delete_where(class_filter(body.filter, classifier) or {}, body.temperature)
    return DeletedCount(deleted=deleted, count=index.count())


_THUMBNAIL: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/png": {}, "image/webp": {}}, "description": "The thumbnail, at most 96 px a side"},
    304: {"description": "Not modified (If-None-Match matched the ETag)"},
    404: {"model": ErrorResponse, "description": "No item with this id, or it has no thumbnail"},
}


# Declared before `/{item_id:path}`, which would otherwise take `<id>/thumbnail` for an id.
@router.get("/{item_id:path}/thumbnail", response_class=Response, responses=_THUMBNAIL)
def get_thumbnail(item_id: str, index: IndexDep, request: Request) -> Response:
    """The item's thumbnail (PNG or WebP), kept when it was added from an image."""
    data = index.thumbnail(item_id)
    if data is None:
        raise ThumbnailNotFoundError(
            f"item {item_id!r} has no thumbnail: it was added from logits, or its index keeps none"
        )
    # The URL stays while the item may be replaced: caches revalidate each time and get a 304 when unchanged.
    etag = f'"{hashlib.sha256(data).hexdigest()[:32]}"'
    headers = {"ETag": etag, "Cache-Control": "private, no-cache", "X-Content-Type-Options": "nosniff"}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(data, media_type=thumbnail_media_type(data), headers=headers)


@router.get("/{item_id:path}", response_model=ItemOut, responses=_NOT_FOUND, response_model_exclude_none=True)
def get_item(item_id: str, index: IndexDep, encoding: EncodingQuery = "json") -> Response:
    """One stored item: its logits and metadata."""
    return model_response(_item_out(index.get(item_id), encoding))


@router.delete("/{item_id:path}", dependencies=[Depends(require_write_key)], responses=_NOT_FOUND | WRITE_RESPONSES)
def delete_item(item_id: str, index: IndexDep) -> DeleteResponse:
    """Remove one item."""
    index.delete(item_id)
    return DeleteResponse(deleted=item_id)
