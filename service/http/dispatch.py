"""Small JSON requests to the simplest routes, answered without FastAPI's request handling.

For each request FastAPI's request handler wraps the request in exit stacks, solves each dependency and validates
the body field by field: more than a whole search over 10,000 items on these machines. An endpoint of the simple
shape of `/v1/search` (one pydantic body, dependencies that read only the request and path, an `async def`
returning a `Response`: `DirectCall`) is called directly instead by its route (`routing.OffLoopRoute`), once
FastAPI's router has matched it: its body validated from the JSON bytes by pydantic-core, its dependencies called
with the request. A request that does not validate there, overridden dependencies and every other route take
FastAPI's own handler, so that their answers and errors are exactly FastAPI's; exceptions reach the app's
exception handlers either way.
"""

import inspect
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Self

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response


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
        if not _returns_response(call):
            return None
        if dependant.path_params or dependant.query_params or dependant.header_params or dependant.cookie_params:
            return None
        if len(dependant.body_params) != 1:
            return None
        field = dependant.body_params[0]
        if getattr(field.field_info, "embed", False):  # the body would be {"<name>": <model>}
            return None
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
