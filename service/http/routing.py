"""The route class of every API route: JSON parsed by pydantic-core, large bodies handled off the event loop.

FastAPI parses a JSON body and validates it on the event loop; for a body of tens of megabytes that stalls
every other request, `/health` included, for seconds. Routes of this class read the body on the loop (that
is I/O) and, when it is large, run the rest of FastAPI's handling (parsing, validation, the endpoint) on a
private event loop in the thread pool. A single parse still holds the GIL while it runs, so parsing uses
pydantic-core's `from_json`, twice as fast as the standard library's, and the cyclic garbage collector is
paused meanwhile: the millions of lists and floats of a large body hold no reference cycles, yet they would
trigger full collections over the whole heap, each holding the GIL for hundreds of milliseconds.
"""

import asyncio
import gc
import json
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

import pydantic_core
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from ..errors import UnsupportedMediaTypeError
from .dispatch import DirectCall

#: Bodies from this size on are parsed and validated off the event loop.
OFF_LOOP_BYTES = 1 << 20


_gc_lock = threading.Lock()
_gc_pausers = 0


@contextmanager
def paused_gc() -> Iterator[None]:
    """Keep the cyclic garbage collector off while the block runs (nested and concurrent pauses count).

    For work that allocates many short-lived containers without cycles (a parsed body, a response's rows),
    which would otherwise trigger collections that hold the GIL.
    """
    global _gc_pausers
    with _gc_lock:
        if _gc_pausers == 0:
            gc.disable()
        _gc_pausers += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pausers -= 1
            if _gc_pausers == 0:
                gc.enable()


def _run_paused(coroutine: Coroutine[Any, Any, Response]) -> Response:
    """Run `coroutine` on a private event loop with the cyclic garbage collector paused."""
    with paused_gc():
        return asyncio.run(coroutine)


class JSONRequest(Request):
    """A request whose `json()` uses pydantic-core's parser."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                self._json = pydantic_core.from_json(body)
            except ValueError:  # let the standard parser say where the JSON breaks (or take deeper nesting)
                self._json = json.loads(body)
        return self._json


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


class OffLoopRoute(APIRoute):
    """An `APIRoute` that parses with `JSONRequest`, handles large bodies in the thread pool, calls the endpoints of
    the simple shape directly with a small JSON body (`dispatch.DirectCall`), and refuses (415) a body of the other
    accepted kind (JSON on an upload route, a form upload on a JSON route), saying which it takes.

    The access middleware already refuses bodies that are neither JSON nor multipart, before reading them.
    """

    def accepted_media_types(self) -> frozenset[str]:
        """The body types of this route: those its OpenAPI request body declares, else its body parameter's."""
        declared = ((self.openapi_extra or {}).get("requestBody") or {}).get("content")
        if declared:
            return frozenset(declared)
        if self.body_field is None:
            return frozenset()
        return frozenset({getattr(self.body_field.field_info, "media_type", "application/json")})

    def _check_media_type(self, request: Request, accepted: frozenset[str]) -> None:
        sent = media_type(request)
        if not accepted or sent in accepted or (sent.endswith("+json") and "application/json" in accepted):
            return
        if accepted == {"application/json"}:
            wanted = "a JSON body: send it with Content-Type: application/json"
        elif accepted == {"multipart/form-data"}:
            wanted = "a multipart/form-data upload (curl -F name=@file), not a JSON body"
        else:
            wanted = " or ".join(sorted(accepted))
        raise UnsupportedMediaTypeError(
            f"{request.method} {request.url.path} takes {wanted}; this body came as {sent or 'no Content-Type'}"
        )

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        accepted = self.accepted_media_types()
        direct = DirectCall.of(self) if self.methods == {"POST"} else None

        async def route(request: Request) -> Response:
            request = JSONRequest(request.scope, request.receive)
            try:
                body = await request.body()
            except ClientDisconnect:  # the body-size limit answered 413 already; this reply is dropped
                return Response(status_code=400)
            if body:
                self._check_media_type(request, accepted)
            if len(body) < OFF_LOOP_BYTES:
                if direct is not None and body and media_type(request) == "application/json":
                    response = await direct(request, body)  # None: it must go FastAPI's way
                    if response is not None:
                        return response
                return await handler(request)
            return await run_in_threadpool(_run_paused, handler(request))

        return route
