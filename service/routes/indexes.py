"""The catalog of indexes: list, create, describe and drop."""

from typing import Any

from fastapi import APIRouter, Depends, Request, status
from fastapi.concurrency import run_in_threadpool

from ..catalog.entries import IndexStatus
from ..errors import IndexConflictError
from ..http.deps import CatalogDep, SettingsDep, require_write_key
from ..http.routing import OffLoopRoute
from ..schemas import (
    DropResponse,
    ErrorResponse,
    IndexCreateRequest,
    IndexDescription,
    IndexList,
    ShardReplaceRequest,
)

router = APIRouter(route_class=OffLoopRoute, prefix="/indexes", tags=["indexes"])
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorResponse, "description": "No index of that name"}}


def describe(index: IndexStatus) -> IndexDescription:
    """The API's view of an index in the catalog."""
    entry = index.entry
    return IndexDescription(
        name=entry.name,
        model=entry.model,
        store=entry.store,
        index_type=entry.index_type,
        temperatures=entry.temperatures,
        created_at=entry.created_at,
        thumbnails=entry.thumbnails,
        status="ready" if index.reason is None else "unavailable",
        reason=index.reason,
        count=index.count,
        dim=index.dim,
        device=index.device,
        recall_at_10=index.recall_at_10,
        approximate=index.approximate,
        shards=_shard_names(entry.shards),
        shard_standbys=_standby_names(entry.shard_standbys),
    )


def _shard_names(shards: list[str] | None) -> list[str] | None:
    """`host:port/db` of each shard URL, without its password."""
    if not shards:
        return None
    from indexes.pg.database import describe as describe_url

    return [describe_url(url) for url in shards]


def _standby_names(standbys: list[str | None] | None) -> list[str | None] | None:
    """`host:port/db` of each shard's standby (None where it has none); None when no shard has one."""
    if not standbys or not any(standbys):
        return None
    from indexes.pg.database import describe as describe_url

    return [describe_url(url) if url else None for url in standbys]


@router.get("")
def list_indexes(catalog: CatalogDep) -> IndexList:
    """Every index with its model, store, size and status."""
    return IndexList(indexes=[describe(index) for index in catalog.statuses()])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    dependencies=[Depends(require_write_key)],
    responses={
        404: {"model": ErrorResponse, "description": "No model of that name"},
        409: {"model": ErrorResponse, "description": "An index of that name exists"},
        507: {
            "model": ErrorResponse,
            "description": "The disk is full, or the service holds as many indexes as it may (MAX_INDEXES)",
        },
    },
)
def create_index(body: IndexCreateRequest, catalog: CatalogDep) -> IndexDescription:
    """Create an empty index bound to a model."""
    created = catalog.create(
        body.name,
        body.model,
        body.store,
        body.index_type,
        body.temperatures,
        thumbnails=body.thumbnails,
        metrics=body.metrics,
        codec=body.codec,
        target_recall=body.target_recall,
        originals=body.originals,
        rerank_codec=body.rerank_codec,
        parameters=body.parameters.model_dump() if body.parameters else None,
        shards=[shard if isinstance(shard, str) else shard.url for shard in body.shards] if body.shards else None,
        shard_standbys=[None if isinstance(shard, str) else shard.standby_url for shard in body.shards]
        if body.shards
        else None,
    )
    return describe(created)


@router.get("/{index_name}", responses=_NOT_FOUND)
def get_index(index_name: str, catalog: CatalogDep, request: Request) -> IndexDescription:
    """One index: its model, store, size and status, and its last calibration while it holds the same items."""
    found = catalog.status(index_name)
    described = describe(found)
    count, calibration = request.app.state.calibrations.get(index_name, (None, None))
    if calibration is not None and count == found.count:
        described.calibration = calibration
    return described


@router.put(
    "/{index_name}/shards/{shard}",
    dependencies=[Depends(require_write_key)],
    responses={
        **_NOT_FOUND,
        409: {"model": ErrorResponse, "description": "The server holds no table of this index"},
        503: {"model": ErrorResponse, "description": "The server is unreachable, or still a standby"},
    },
)
def replace_shard(index_name: str, shard: int, body: ShardReplaceRequest, catalog: CatalogDep) -> IndexDescription:
    """Serve one shard of a sharded pgvector index from another server: its standby once the primary is lost
    (`"promote": true` promotes it), or a copy restored elsewhere. The other shards are untouched."""
    promote = body.url is None if body.promote is None else body.promote
    return describe(catalog.replace_shard(index_name, shard, body.url, promote))


@router.delete(
    "/{index_name}",
    dependencies=[Depends(require_write_key)],
    responses={**_NOT_FOUND, 409: {"model": ErrorResponse, "description": "The service's default index"}},
)
async def drop_index(index_name: str, catalog: CatalogDep, settings: SettingsDep) -> DropResponse:
    """Drop an index and delete its items for good."""
    if index_name == settings.index:
        raise IndexConflictError(
            f"index {index_name!r} is this service's default index (LOGITSEARCH_INDEX) and cannot be dropped "
            "while it is served; `logitsearch index --rebuild` empties it"
        )
    await run_in_threadpool(catalog.drop, index_name)
    return DropResponse(deleted=index_name)
