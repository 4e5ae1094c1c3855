"""Request dependencies: what the lifespan loaded, read from `request.app.state`, and access control.

They are `async def` although nothing in them awaits: FastAPI runs a plain `def` dependency in its thread
pool, one hop per dependency per request, while these only read attributes.
"""

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from indexes.store import VectorStore
from models.classifier import Classifier

from .config import Settings
from .errors import ServiceNotReadyError
from .metrics import Metrics


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_classifier(request: Request) -> Classifier:
    classifier: Classifier | None = getattr(request.app.state, "classifier", None)
    if classifier is None:
        raise ServiceNotReadyError("the model is not loaded yet; retry when GET /ready answers 200")
    return classifier


async def get_index(request: Request) -> VectorStore:
    index: VectorStore | None = getattr(request.app.state, "index", None)
    if index is None:
        raise ServiceNotReadyError("the index is not loaded yet; retry when GET /ready answers 200")
    return index


async def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


SettingsDep = Annotated[Settings, Depends(get_settings)]
ClassifierDep = Annotated[Classifier, Depends(get_classifier)]
IndexDep = Annotated[VectorStore, Depends(get_index)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]


def _presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token:
        return token.strip()
    return request.headers.get("x-api-key")


def _check_key(request: Request, settings: Settings) -> None:
    if settings.api_key is None:
        return
    presented = _presented_key(request)
    expected = settings.api_key.get_secret_value()
    if presented is None or not hmac.compare_digest(presented.encode(), expected.encode()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="missing or wrong API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`",
            headers={"WWW-Authenticate": "Bearer"},
        )


async def require_write_key(request: Request, settings: SettingsDep) -> None:
    """Writes need the API key whenever one is configured."""
    _check_key(request, settings)


async def require_read_key(request: Request, settings: SettingsDep) -> None:
    """Reads need the API key only with `protect_reads`."""
    if settings.protect_reads:
        _check_key(request, settings)
