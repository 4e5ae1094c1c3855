"""A deadline for long work, carried in a context variable: loops check it between blocks and stop.

The service sets it per request (`REQUEST_TIMEOUT_S`); context variables follow the request into the thread
pool. Worker threads started by the work itself do not inherit them: read `current_deadline()` before
starting them and pass it to `check_deadline`.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from .errors import DeadlineExceededError

_DEADLINE: ContextVar[float | None] = ContextVar("logitsearch_deadline", default=None)


@contextmanager
def deadline_after(seconds: float) -> Iterator[None]:
    """Work under this block (and what it hands to the thread pool) stops `seconds` from now."""
    token = _DEADLINE.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def current_deadline() -> float | None:
    """The `time.monotonic()` value the current work must stop at, if any."""
    return _DEADLINE.get()


def check_deadline(deadline: float | None = None) -> None:
    """Raise `DeadlineExceededError` past `deadline` (default: the current context's)."""
    limit = deadline if deadline is not None else _DEADLINE.get()
    if limit is not None and time.monotonic() > limit:
        raise DeadlineExceededError("the request's time limit (LOGITSEARCH_REQUEST_TIMEOUT_S) passed; work stopped")
