"""The one place where domain errors become HTTP responses (`{"detail": ...}`, like HTTPException)."""

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from indexes.errors import IndexCorruptedError, InvalidInputError, ItemNotFoundError, UnknownMetricError
from models.errors import ImageError, ImageTooLargeError, ModelError

logger = logging.getLogger(__name__)


class ServiceNotReadyError(Exception):
    """The model or the index is not loaded (yet)."""


class LimitExceededError(Exception):
    """A request asks for more than a configured limit (k, batch size); maps to 422."""


# Most specific first: the first matching class decides the status.
_STATUS: list[tuple[type[Exception], int]] = [
    (ItemNotFoundError, 404),
    (ImageTooLargeError, 413),
    (ImageError, 422),
    (InvalidInputError, 422),
    (UnknownMetricError, 422),
    (LimitExceededError, 422),
    (ServiceNotReadyError, 503),
    (IndexCorruptedError, 503),
    (ModelError, 503),
]


def status_for(exc: Exception) -> int:
    """The HTTP status for a domain error, 500 for anything unexpected."""
    return next((status for cls, status in _STATUS if isinstance(exc, cls)), 500)


async def _handle(request: Request, exc: Exception) -> JSONResponse:
    status = status_for(exc)
    if status >= 500:
        logger.error("%s %s failed: %s", request.method, request.url.path, exc)
    return JSONResponse(status_code=status, content={"detail": str(exc)})


def register_error_handlers(app: FastAPI) -> None:
    """Map every domain error class to its status code."""
    for cls, _ in _STATUS:
        app.add_exception_handler(cls, _handle)
