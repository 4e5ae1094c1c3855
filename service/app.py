"""The FastAPI application: `create_app(settings)`; the model and index load in the lifespan."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import torch  # imported before indexes (faiss): both bundle OpenMP, and this order is the tested one
from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from indexes.device import configure_cpu, create_gpu_resources

from . import __version__
from .bootstrap import load_model, open_index
from .config import Settings, get_settings
from .errors import register_error_handlers
from .limits import BodySizeLimit, RequestTimeout
from .metrics import install_metrics
from .routes import divergence, embed, evaluate, health, info, items, search
from .schemas import ERROR_RESPONSES

logger = logging.getLogger(__name__)


def _load(app: FastAPI) -> None:
    settings: Settings = app.state.settings
    torch.set_num_threads(settings.num_threads)
    configure_cpu(settings.num_threads)
    if settings.api_key is None:
        logger.warning("LOGITSEARCH_API_KEY is not set: anyone who reaches this port can add and delete items")
    app.state.gpu_resources = create_gpu_resources(settings.faiss_gpu)
    classifier = load_model(settings)
    app.state.index = open_index(settings, classifier, app.state.gpu_resources)
    app.state.classifier = classifier
    logger.info(
        "serving model %r (%d classes) and index %r (%d items, %s) ",
        classifier.spec.name,
        classifier.num_classes,
        settings.index,
        app.state.index.count(),
        app.state.index.device,
    )


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    await run_in_threadpool(_load, app)
    try:
        yield
    finally:
        index = getattr(app.state, "index", None)
        if index is not None:
            await run_in_threadpool(index.close)
            app.state.index = None


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; nothing heavy happens until the lifespan starts."""
    app = FastAPI(
        title="logit-search",
        version=__version__,
        summary="Similarity search over classifier logits",
        lifespan=lifespan,
    )
    app.state.settings = settings or get_settings()
    # Each middleware added wraps the ones before it: metrics, added last, see the limits' 413 and 503 too.
    app.add_middleware(BodySizeLimit, max_bytes=app.state.settings.max_body_bytes)
    app.add_middleware(RequestTimeout, seconds=app.state.settings.request_timeout_s)
    install_metrics(app)
    register_error_handlers(app)
    app.include_router(health.router)
    for module in (info, embed, items, search, divergence, evaluate):
        app.include_router(module.router, prefix="/v1", responses=ERROR_RESPONSES)
    return app
