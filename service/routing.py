"""The route class of every API route: JSON parsed by pydantic-core, large bodies handled off the event loop, and
small JSON requests to simple endpoints answered without FastAPI's per-request machinery.

FastAPI parses a JSON body and validates it on the event loop; for a body of tens of megabytes that stalls
every other request, `/health` included, for seconds. Routes of this class read the body on the loop (that
is I/O) and, when it is large, run the rest of FastAPI's handling (parsing, validation, the endpoint) on a
private event loop in the thread pool. A single parse still holds the GIL while it runs, so parsing uses
pydantic-core's `from_json`, twice as fast as the standard library's, and the cyclic garbage collector is
paused meanwhile: the millions of lists and floats of a large body hold no reference cycles, yet they would
trigger full collections over the whole heap, each holding the GIL for hundreds of milliseconds.

FastAPI's request handling (body parsing, solving each dependency, validating, telemetry) costs about a
millisecond a request on these machines, as much as a whole search over 10,000 items. An endpoint of the simple
shape of the search routes (one pydantic body, dependencies that read only the request and path, an `async def`
returning a `Response`) is called directly instead (`_DirectCall`): the body validated from its JSON bytes by
pydantic-core, the dependencies called with the request. A request that does not validate there, or any shape
this does not recognise, goes the FastAPI way, so errors and every other route are exactly FastAPI's.
"""

import asyncio
import gc
import inspect
import json
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Self

import pydantic_core
from fastapi.concurrency import run_in_threadpool
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from .errors import UnsupportedMediaTypeError

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


@dataclass(frozen=True)
class _DirectCall:
    """How to call an endpoint without FastAPI's request handling, for the shapes where that is the same call:
    one pydantic model as the whole JSON body, dependencies that are `async def` functions of the request and
    path parameters only (no sub-dependencies, no overrides), and an `async def` endpoint returning a `Response`.
    """

    endpoint: Callable[..., Coroutine[Any, Any, Response]]
    body_name: str
    body_model: type[BaseModel]
    dependencies: tuple[Dependant, ...]

    @classmethod
    def of(cls, route: APIRoute) -> Self | None:
        """The direct call of `route`'s endpoint, or None when its shape is not the simple one."""
        dependant = route.dependant
        call = dependant.call
        if call is None or not inspect.iscoroutinefunction(call) or dependant.request_param_name is not None:
            return None
        if not _returns_response(call) or getattr(route, "_embed_body_fields", True):
            return None
        if dependant.path_params or dependant.query_params or dependant.header_params or dependant.cookie_params:
            return None
        if len(dependant.body_params) != 1:
            return None
        field = dependant.body_params[0]
        model = getattr(field.field_info, "annotation", None)
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or type(field.field_info).__name__ != "Body":
            return None
        if not all(_is_request_reader(dependency) for dependency in dependant.dependencies):
            return None
        return cls(call, field.name, model, tuple(dependant.dependencies))

    async def __call__(self, request: Request, body: bytes) -> Response | None:
        """The endpoint's response, or None when the request must go the FastAPI way (it does not validate, or
        dependencies are overridden)."""
        if request.app.dependency_overrides:
            return None
        try:
            model = self.body_model.model_validate_json(body)
        except ValidationError:  # FastAPI says what is wrong, as everywhere else
            return None
        values: dict[str, Any] = {self.body_name: model}
        for dependency in self.dependencies:
            value = await _call_dependency(dependency, request)
            if dependency.name is not None:
                values[dependency.name] = value
        return await self.endpoint(**values)


def _returns_response(call: Callable[..., Any]) -> bool:
    annotation = inspect.signature(call, eval_str=True).return_annotation
    return isinstance(annotation, type) and issubclass(annotation, Response)


def _is_request_reader(dependency: Dependant) -> bool:
    """An `async def` of the request and path parameters only, with no dependencies of its own."""
    only_path = not (
        dependency.query_params or dependency.header_params or dependency.cookie_params or dependency.body_params
    )
    return (
        dependency.call is not None
        and inspect.iscoroutinefunction(dependency.call)
        and only_path
        and not dependency.dependencies
        and all(getattr(param.field_info, "annotation", None) is str for param in dependency.path_params)
    )


async def _call_dependency(dependency: Dependant, request: Request) -> Any:
    assert dependency.call is not None  # `_is_request_reader`
    kwargs: dict[str, Any] = {param.name: request.path_params[param.alias] for param in dependency.path_params}
    if dependency.request_param_name is not None:
        kwargs[dependency.request_param_name] = request
    return await dependency.call(**kwargs)


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


class OffLoopRoute(APIRoute):
    """An `APIRoute` that parses with `JSONRequest`, handles large bodies in the thread pool, and refuses (415) a
    body of the other accepted kind (JSON on an upload route, a form upload on a JSON route), saying which it takes.

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
        sent = _media_type(request)
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
        direct = _DirectCall.of(self)

        async def route(request: Request) -> Response:
            request = JSONRequest(request.scope, request.receive)
            try:
                body = await request.body()
            except ClientDisconnect:  # the body-size limit answered 413 already; this reply is dropped
                return Response(status_code=400)
            if body:
                self._check_media_type(request, accepted)
            if len(body) < OFF_LOOP_BYTES:
                if direct is not None and body and _media_type(request) == "application/json":
                    response = await direct(request, body)
                    if response is not None:
                        return response
                return await handler(request)
            return await run_in_threadpool(_run_paused, handler(request))

        return route
