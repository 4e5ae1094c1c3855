"""The FastAPI application: `create_app(settings)`; the catalog of indexes and models opens in the lifespan."""

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Path
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute

from indexes.device import configure_cpu, create_gpu_resources

from . import __version__
from .catalog.firststart import first_start
from .catalog.registry import Catalog
from .config import Settings, get_settings
from .errors import register_error_handlers
from .http.access import AccessControl
from .http.limits import BodySizeLimit, RequestTimeout
from .http.openapi import install_openapi
from .http.telemetry import install_metrics
from .routes import analyses, count, divergence, embed, evaluate, health, indexes, info, items, models, search
from .routes.web import install_web
from .schemas import ERROR_RESPONSES, ErrorResponse

logger = logging.getLogger(__name__)


def _load(app: FastAPI) -> None:
    settings: Settings = app.state.settings
    configure_cpu(settings.num_threads)
    if settings.api_key is None:
        logger.warning("LOGITSEARCH_API_KEY is not set: anyone who reaches this port can add and delete items")
    catalog: Catalog | None = app.state.opened_catalog
    app.state.opened_catalog = None
    if catalog is None:
        catalog = Catalog(settings, create_gpu_resources(settings.faiss_gpu))
        catalog.open()
        first_start(catalog)
    app.state.catalog = catalog
    # What was loaded lives as long as the app: keep the cyclic collector from scanning it on every full pass.
    gc.freeze()
    for status in catalog.statuses():
        if status.reason is None:
            logger.info(
                "serving index %r: model %r, %d items, %s", status.entry.name, status.entry.model, status.count,
                status.device,
            )  # fmt: skip
        else:
            logger.warning("index %r is unavailable: %s", status.entry.name, status.reason)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    if getattr(app.state, "catalog", None) is not None:  # started already (a test client inside another one)
        yield
        return
    await run_in_threadpool(_load, app)
    try:
        yield
    finally:
        catalog = getattr(app.state, "catalog", None)
        if catalog is not None:
            app.state.catalog = None
            await run_in_threadpool(catalog.close)


async def _index_in_path(  # async: FastAPI runs a plain def dependency in the thread pool
    index_name: Annotated[str, Path(description="Index name; GET /v1/indexes lists them")],
) -> None:
    """Declares the `{index_name}` path parameter of the routes under /v1/indexes/{index_name}/ for OpenAPI."""


async def _model_in_path(model_name: Annotated[str, Path(description="Model name; GET /v1/models lists them")]) -> None:
    """Declares the `{model_name}` path parameter of /v1/models/{model_name}/embed for OpenAPI."""


def operation_id(route: APIRoute) -> str:
    """`<tag>-<handler>` (`search-search_neighbors`), readable in generated clients, instead of FastAPI's
    `<handler>_<path>_<method>`; `-in_index` and `-with_model` for the same routes under an index or a model."""
    name = f"{route.tags[0]}-{route.name}" if route.tags else route.name
    if route.path.startswith("/v1/indexes/{index_name}/"):
        return f"{name}-in_index"
    return f"{name}-with_model" if route.path.startswith("/v1/models/{model_name}/") else name


def create_app(settings: Settings | None = None, catalog: Catalog | None = None) -> FastAPI:
    """Build the app; nothing heavy happens until the lifespan starts.

    Args:
        settings: the settings (default: from the environment).
        catalog: a catalog opened already (`logitsearch serve` opens it before the server starts, with
            progress bars on a first start), which the lifespan then serves and closes; None opens one there.
    """
    app = FastAPI(
        title="logit-search",
        version=__version__,
        summary="Similarity search over classifier logits",
        lifespan=lifespan,
        docs_url=None,  # served by routes.web with local assets instead of a CDN's
        redoc_url=None,
        generate_unique_id_function=operation_id,
    )
    app.state.settings = settings or get_settings()
    app.state.calibrations = {}  # index name -> (item count, the last calibration's rows): shown by GET the index
    app.state.opened_catalog = catalog
    register_error_handlers(app)
    app.include_router(health.router)
    install_web(app)
    for module in (info, embed, items, count, search, analyses, divergence, evaluate, indexes, models):
        app.include_router(module.router, prefix="/v1", responses=ERROR_RESPONSES)
    # The same routers again under an index or a model: the dependencies read the name from the path, so
    # `/v1/indexes/{index_name}/search` runs the very handler of `/v1/search`, on that index.
    for module in (items, count, search, analyses, evaluate):
        app.include_router(
            module.router,
            prefix="/v1/indexes/{index_name}",
            dependencies=[Depends(_index_in_path)],
            responses={**ERROR_RESPONSES, 404: {"model": ErrorResponse, "description": "No index of that name"}},
        )
    app.include_router(
        embed.router,
        prefix="/v1/models/{model_name}",
        dependencies=[Depends(_model_in_path)],
        responses={**ERROR_RESPONSES, 404: {"model": ErrorResponse, "description": "No model of that name"}},
    )
    # Each middleware added wraps the ones before it: metrics, added last, see the limits' 413 and 503 too.
    app.add_middleware(BodySizeLimit, max_bytes=app.state.settings.max_body_bytes)
    app.add_middleware(RequestTimeout, seconds=app.state.settings.request_timeout_s)
    app.add_middleware(AccessControl, settings=app.state.settings)  # keys and Host before any body is read
    install_metrics(app)
    install_openapi(app, app.state.settings)
    return app
