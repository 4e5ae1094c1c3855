"""The client's exceptions: one class per kind of failure, each carrying the server's `detail`."""

from typing import Any

import httpx


class LogitSearchError(Exception):
    """A request the service refused or could not answer.

    Attributes:
        status: the HTTP status (None when no response came: the connection failed).
        detail: the server's `detail`: a message saying what was wrong, or FastAPI's list of field errors.
        method, url: the request.
        upserted: for a failed `upsert` in batches, how many items the batches before the failed one stored.
    """

    upserted: int | None = None

    def __init__(self, detail: Any, *, status: int | None = None, method: str = "", url: str = "") -> None:
        self.status = status
        self.detail = detail
        self.method = method
        self.url = url
        where = f"{method} {url}: " if method else ""
        code = f"{status} " if status is not None else ""
        super().__init__(f"{where}{code}{_describe(detail)}")


class InvalidRequest(LogitSearchError):
    """400, 415 or 422: the request was malformed or out of bounds; the detail says how to fix it."""


class PayloadTooLarge(InvalidRequest):
    """413: a body or an image over its size limit."""


class Unauthorized(LogitSearchError):
    """401: a missing or wrong API key."""


class Forbidden(LogitSearchError):
    """403: the key may only read."""


class NotFound(LogitSearchError):
    """404: no item, index, model or thumbnail of that name."""


class Conflict(LogitSearchError):
    """409: an index of that name exists, or the default index cannot be dropped."""


class TooManyRequests(LogitSearchError):
    """429: the service is busy with the same kind of work (an evaluation); retry later."""


class Unavailable(LogitSearchError):
    """503: not loaded yet, an index unavailable, the request timed out; or no connection at all."""


class ConnectionFailed(Unavailable):
    """The service could not be reached (connection refused, reset or timed out); `status` is None."""


class StorageFull(LogitSearchError):
    """507: the server's disk is full, or it holds as many indexes as it may; nothing of the request was stored."""


class ServerError(LogitSearchError):
    """Any other 5xx: a fault of the service (please report it)."""


class UnexpectedResponse(LogitSearchError):
    """A success status whose body is not the service's answer (an HTML page, JSON of another shape): the URL
    is not a logit-search service of this version, or a proxy answered in its place."""


def unexpected_response(response: httpx.Response, exc: Exception) -> UnexpectedResponse:
    """The exception for a 2xx whose body could not be read as the answer `exc` failed to parse."""
    kind = response.headers.get("content-type", "no content type")
    start = response.content[:80].decode("utf-8", errors="replace")
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    detail = (
        f"the answer is not the service's ({kind}, starting {start!r}: {reason}); check that the URL is a "
        "logit-search service of this version and that no proxy answers in its place"
    )
    request = response.request
    return UnexpectedResponse(detail, status=response.status_code, method=request.method, url=str(request.url))


_BY_STATUS: dict[int, type[LogitSearchError]] = {
    400: InvalidRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    415: InvalidRequest,
    422: InvalidRequest,
    429: TooManyRequests,
    503: Unavailable,
    507: StorageFull,
}


def error_for(response: httpx.Response) -> LogitSearchError:
    """The exception for an error response, with the server's `detail` (or its text when not JSON)."""
    try:
        body = response.json()
        detail = body["detail"] if isinstance(body, dict) and "detail" in body else body
    except ValueError:
        detail = response.text or response.reason_phrase
    status = response.status_code
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else LogitSearchError)
    return cls(detail, status=status, method=response.request.method, url=str(response.request.url))


def _describe(detail: Any) -> str:
    """A one-line rendering of `detail`: the message itself, or `loc: msg` for each field error."""
    if isinstance(detail, list):
        parts = []
        for error in detail:
            if isinstance(error, dict):
                location = ".".join(str(part) for part in error.get("loc", ()))
                parts.append(f"{location}: {error.get('msg', error)}" if location else str(error.get("msg", error)))
            else:
                parts.append(str(error))
        return "; ".join(parts)
    return str(detail)
