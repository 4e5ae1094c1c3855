"""Request dependencies: the catalog the lifespan opened (`request.app.state`), what it holds, access control.

They are `async def`: FastAPI runs a plain `def` dependency in its thread pool, one hop per dependency per
request, while most of these only read attributes; the ones that may load a file hop there themselves.
"""

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool

from indexes.store import VectorStore
from models import Classifier, ModelSpec, read_spec

from ..catalog.entries import IndexEntry
from ..catalog.registry import Catalog
from ..config import Settings
from ..errors import ServiceNotReadyError
from .telemetry import Metrics


async def request_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _catalog(request: Request) -> Catalog:
    catalog: Catalog | None = getattr(request.app.state, "catalog", None)
    if catalog is None:
        raise ServiceNotReadyError("the service is still loading; retry when GET /ready answers 200")
    return catalog


async def get_catalog(request: Request) -> Catalog:
    return _catalog(request)


def _index_name(request: Request) -> str:
    """The index of the path (`/v1/indexes/{index_name}/...`), else the default index."""
    name: str = request.path_params.get("index_name") or request.app.state.settings.index
    return name


async def get_index(request: Request) -> VectorStore:
    """The store of the path's index (404 unknown, 503 unavailable)."""
    return _catalog(request).store(_index_name(request))


async def get_entry(request: Request) -> IndexEntry:
    """The catalog entry of the path's index (its model, store and options)."""
    return _catalog(request).entry(_index_name(request))


async def get_classifier(request: Request) -> Classifier:
    """The model of the path (`/v1/models/{model_name}/...`), else the model of the path's index.

    Loads it on first use, in the thread pool: a load takes from milliseconds to seconds.
    """
    catalog = _catalog(request)
    model_name = request.path_params.get("model_name")
    if model_name is not None:
        loaded = catalog.models.loaded(model_name)
        return loaded if loaded is not None else await run_in_threadpool(catalog.models.get, model_name)
    index_name = _index_name(request)
    catalog.store(index_name)  # an unknown or unavailable index answers for itself before its model loads
    if catalog.models.loaded(model_name := catalog.entry(index_name).model) is None:
        await run_in_threadpool(catalog.models.get, model_name)
    return catalog.index_model(index_name)


async def get_spec(request: Request) -> ModelSpec:
    """The spec of the path's index's model, read without loading the weights."""
    catalog = _catalog(request)
    return await run_in_threadpool(read_spec, catalog.settings.models_dir, catalog.entry(_index_name(request)).model)


async def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


SettingsDep = Annotated[Settings, Depends(request_settings)]
CatalogDep = Annotated[Catalog, Depends(get_catalog)]
SpecDep = Annotated[ModelSpec, Depends(get_spec)]
ClassifierDep = Annotated[Classifier, Depends(get_classifier)]
IndexDep = Annotated[VectorStore, Depends(get_index)]
EntryDep = Annotated[IndexEntry, Depends(get_entry)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]


async def require_write_key(request: Request) -> None:
    """Writes need the read-write key whenever one is configured (`access.AccessControl` sets the role)."""
    role = getattr(request.state, "role", "write")
    if role == "read":
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, detail="this key may only read; writes need LOGITSEARCH_API_KEY's key"
        )
    if role != "write":
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="writes need the API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`",
            headers={"WWW-Authenticate": "Bearer"},
        )
