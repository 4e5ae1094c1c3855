"""Small JSON requests to the simplest routes, answered without FastAPI's routing and request handling.

For each request FastAPI's router tries the routes in turn, then wraps the request in exit stacks and exception
wrappers, solves each dependency and validates the body field by field: together more than a whole search over
10,000 items on these machines (the router and its wrappers alone ~0.15 ms, measured in process). An endpoint
of the simple shape of `/v1/search` (one pydantic body, dependencies that read only the request and path, an
`async def` returning a `Response`: `DirectCall`) is called directly instead, by `DirectRoutes`, the innermost
of the app's middlewares (the access, size, time and metrics middlewares still see every request): its path
looked up in a table, its body validated from the JSON bytes by pydantic-core, its dependencies called with the
request, its exceptions answered by the app's exception handlers. A request that does not validate there, a body
that is not small JSON, overridden dependencies and every other route go on to FastAPI, the body replayed, so
that their answers and errors are exactly FastAPI's.
"""

import inspect
import re
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Self

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.convertors import Convertor
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .routing import OFF_LOOP_BYTES, media_type


@dataclass(frozen=True)
class DirectCall:
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


@dataclass(frozen=True)
class _Target:
    """A route `DirectRoutes` calls directly, with its full path's pattern."""

    route: APIRoute
    call: DirectCall
    pattern: re.Pattern[str]
    convertors: dict[str, Convertor[Any]]


class DirectRoutes:
    """ASGI middleware answering POSTs of small JSON bodies to the routes of the simple shape (`DirectCall`)
    under `mounts` (prefix and router, as included in the app); see the module docstring."""

    def __init__(self, app: ASGIApp, mounts: Sequence[tuple[str, APIRouter]]) -> None:
        self.app = app
        self.exact: dict[str, _Target] = {}
        self.templated: list[_Target] = []
        for prefix, router in mounts:
            for route in router.routes:
                if not isinstance(route, APIRoute) or route.methods != {"POST"} or not (call := DirectCall.of(route)):
                    continue
                pattern, _, convertors = compile_path(prefix + route.path)
                target = _Target(route, call, pattern, convertors)
                if convertors:
                    self.templated.append(target)
                else:
                    self.exact[prefix + route.path] = target

    def _match(self, path: str) -> tuple[_Target, dict[str, Any]] | None:
        target = self.exact.get(path)
        if target is not None:
            return target, {}
        for target in self.templated:
            match = target.pattern.match(path)
            if match is not None:
                return target, {
                    name: target.convertors[name].convert(value) for name, value in match.groupdict().items()
                }
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        matched = self._match(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        if matched is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        if media_type(request) != "application/json":
            await self.app(scope, receive, send)
            return
        try:
            body = await request.body()
        except ClientDisconnect:  # the body-size limit answered 413 already
            return
        if body and len(body) < OFF_LOOP_BYTES:
            target, path_params = matched
            scope.update(endpoint=target.route.endpoint, route=target.route, path_params=path_params)  # as routed
            try:
                response = await target.call(request, body)
            except Exception as exc:  # noqa: BLE001 - answered by the app's handler for it, else raised on
                response = await _handle_exception(request, exc)
            if response is not None:
                await response(scope, receive, send)
                return
        await self.app(scope, _replay(body, receive), send)


async def _handle_exception(request: Request, exc: Exception) -> Response:
    """The answer of the app's exception handler for `exc` (looked up as Starlette's `ExceptionMiddleware` does);
    `exc` itself, raised again, when there is none."""
    handlers = request.app.exception_handlers
    handler = handlers.get(exc.status_code) if isinstance(exc, HTTPException) else None
    handler = handler or next((handlers[cls] for cls in type(exc).__mro__ if cls in handlers), None)
    if handler is None:
        raise exc
    if inspect.iscoroutinefunction(handler):
        response: Response = await handler(request, exc)
    else:
        response = await run_in_threadpool(handler, request, exc)
    return response


def _replay(body: bytes, receive: Receive) -> Receive:
    """`receive` with `body`, read already, as its first message."""
    pending = True

    async def replayed() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
