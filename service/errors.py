"""The one place where domain errors become HTTP responses (`{"detail": ...}`, like HTTPException)."""

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from evaluation.errors import AnalysisUnavailableError
from indexes.errors import (
    DeadlineExceededError,
    IndexClosedError,
    IndexCorruptedError,
    InUseError,
    InvalidInputError,
    ItemNotFoundError,
    ManifestMismatchError,
    StorageError,
    StorageFullError,
    StoreConflictError,
    StoreUnavailableError,
    UnknownMetricError,
)
from models.errors import ImageError, ImageTooLargeError, ModelError, ModelNotFoundError

logger = logging.getLogger(__name__)


class ServiceError(Exception):
    """Base class of the service's own domain errors."""


class MissingExtraError(ServiceError):
    """A command needs an optional dependency that is not installed (CLI only: the API needs none)."""


class UnsupportedMediaTypeError(ServiceError):
    """A body of a type the route does not take, e.g. JSON sent to an upload route (415)."""


class ServiceNotReadyError(ServiceError):
    """The model or the index is not loaded (yet)."""


class LimitExceededError(ServiceError):
    """A request asks for more than a configured limit (k, batch size); maps to 422."""


class InvalidVectorsError(ServiceError, ValueError):
    """Binary vectors (`logits_b64`) that are not base64 or do not hold the float32 values their shape says (422)."""


class IndexNotFoundError(ServiceError, LookupError):
    """No index of that name in the catalog (404)."""


class ThumbnailNotFoundError(ServiceError, LookupError):
    """The item exists but has no thumbnail (404)."""


class IndexConflictError(ServiceError):
    """The request conflicts with the catalog's state, e.g. dropping the default index (409)."""


class IndexExistsError(IndexConflictError):
    """An index of that name exists already (409)."""


class InvalidIndexError(ServiceError, ValueError):
    """A bad index name or option (422)."""


class IndexLimitError(ServiceError):
    """The service holds as many indexes as it may (`LOGITSEARCH_MAX_INDEXES`, the open-file limit)."""


class IndexUnavailableError(ServiceNotReadyError):
    """The index is in the catalog but cannot serve: its files or its model do not check out (503)."""


class ModelUnavailableError(ServiceNotReadyError):
    """The model's files are there but do not load (503)."""


# Most specific first: the first matching class decides the status.
_STATUS: list[tuple[type[Exception], int]] = [
    (ItemNotFoundError, 404),
    (IndexNotFoundError, 404),
    (ThumbnailNotFoundError, 404),
    (IndexClosedError, 404),
    (ModelNotFoundError, 404),
    (IndexConflictError, 409),
    (InUseError, 409),
    (StoreConflictError, 409),
    (InvalidIndexError, 422),
    (UnsupportedMediaTypeError, 415),
    (ImageTooLargeError, 413),
    (ImageError, 422),
    (InvalidInputError, 422),
    (UnknownMetricError, 422),
    (LimitExceededError, 422),
    (InvalidVectorsError, 422),
    (StorageFullError, 507),
    (IndexLimitError, 507),
    (StorageError, 503),
    (StoreUnavailableError, 503),
    (DeadlineExceededError, 503),
    (ServiceNotReadyError, 503),
    (IndexCorruptedError, 503),
    (ManifestMismatchError, 503),
    (ModelError, 503),
    (AnalysisUnavailableError, 503),
]


def status_for(exc: Exception) -> int:
    """The HTTP status for a domain error, 500 for anything unexpected."""
    return next((status for cls, status in _STATUS if isinstance(exc, cls)), 500)


async def _handle(request: Request, exc: Exception) -> JSONResponse:
    status = status_for(exc)
    if status >= 500:
        logger.error("%s %s failed: %s", request.method, request.url.path, exc)
    return JSONResponse(status_code=status, content={"detail": str(exc)})


_ECHO_DEPTH, _ECHO_ITEMS, _ECHO_CHARS, _MAX_ERRORS = 3, 8, 200, 20


def _json_safe(value: Any, depth: int = 0) -> Any:
    """A small, JSON-encodable echo of `value`: non-finite floats as strings, deep or long containers cut short.

    The validation errors echo the offending input, which can be megabytes or hundreds of levels deep.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return value if len(value) <= _ECHO_CHARS else value[:_ECHO_CHARS] + "…"
    if isinstance(value, dict | list | tuple):
        if depth >= _ECHO_DEPTH:
            return f"<{type(value).__name__} of {len(value)}>"
        if isinstance(value, dict):
            items = list(value.items())[:_ECHO_ITEMS]
            return {str(k)[:_ECHO_CHARS]: _json_safe(v, depth + 1) for k, v in items}
        return [_json_safe(v, depth + 1) for v in value[:_ECHO_ITEMS]] + (["…"] if len(value) > _ECHO_ITEMS else [])
    return value if value is None or isinstance(value, int | float | bool) else repr(value)[:_ECHO_CHARS]


async def _handle_validation(request: Request, exc: Exception) -> JSONResponse:
    # FastAPI's own handler echoes the offending input, and a NaN in it cannot be encoded as JSON (a 500).
    errors = exc.errors() if isinstance(exc, RequestValidationError) else [{"msg": str(exc)}]
    detail = [
        {key: _json_safe(value) if key in ("input", "ctx") else value for key, value in error.items()}
        for error in errors[:_MAX_ERRORS]
    ]
    return JSONResponse(status_code=422, content={"detail": detail})


#: The methods a 405's `Allow` may name (HTTP's, less CONNECT and TRACE, which no route serves).
_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at the request's path, asked of each route as the router would ask it.

    Starlette's own 405 names the methods of the first route that matched the path only, and FastAPI's included
    routers are routes of their own, so the question goes through `BaseRoute.matches` with each method in turn.
    """
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in request.app.router.routes
        )
    ]


async def _handle_http(request: Request, exc: Exception) -> Response:
    """Starlette's and FastAPI's own HTTP errors, with a 405's `Allow` naming all of the path's methods."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 405 and (methods := allowed_methods(request)):
        exc.headers = {**(exc.headers or {}), "Allow": ", ".join(methods)}
    return await http_exception_handler(request, exc)


def register_error_handlers(app: FastAPI) -> None:
    """Map every domain error class to its status code, and keep request-validation errors encodable."""
    for cls, _ in _STATUS:
        app.add_exception_handler(cls, _handle)
    app.add_exception_handler(RequestValidationError, _handle_validation)
    app.add_exception_handler(StarletteHTTPException, _handle_http)
