"""The search routes answer small JSON requests without FastAPI's request handling (`service.http.dispatch`, called by
the route class), with the very same answers and errors."""

from collections.abc import Iterator

import numpy as np
import pytest
from fastapi import routing as fastapi_routing
from fastapi.testclient import TestClient
from httpx import Response

from service.http.deps import request_settings


@pytest.fixture
def solved(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The paths whose dependencies FastAPI solved (its request handler's way), request by request."""
    paths: list[str] = []
    original = fastapi_routing.solve_dependencies

    async def spy(*, request, **kwargs):  # type: ignore[no-untyped-def]
        paths.append(request.url.path)
        return await original(request=request, **kwargs)

    monkeypatch.setattr(fastapi_routing, "solve_dependencies", spy)
    yield paths


@pytest.fixture
def routed(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The paths FastAPI's router handed to one of its routes, request by request."""
    paths: list[str] = []
    original = fastapi_routing.APIRoute.handle

    async def spy(self, scope, receive, send):  # type: ignore[no-untyped-def]
        paths.append(scope["path"])
        await original(self, scope, receive, send)

    monkeypatch.setattr(fastapi_routing.APIRoute, "handle", spy)
    yield paths


def _through_fastapi(client: TestClient, path: str, bodies: list[dict[str, object]]) -> list[Response]:
    """The answers to `bodies` with a dependency overridden, which sends every request FastAPI's way."""
    overrides = client.app.dependency_overrides  # type: ignore[attr-defined]
    overrides[request_settings] = request_settings
    try:
        return [client.post(path, json=body) for body in bodies]
    finally:
        overrides.clear()


def _bodies(rng: np.random.Generator) -> list[dict[str, object]]:
    query = (rng.standard_normal(10) * 4).tolist()
    return [
        {"queries": [{"logits": query}], "k": 5},
        {"queries": [{"logits": query}, {"id": "digits-3"}], "k": 3, "metric": "kl", "temperature": 2.0},
        {"queries": [{"logits": query}], "k": 4, "metric": "ce", "filter": {"split": "test"}},
    ]


@pytest.mark.parametrize("path", ["/v1/search", "/v1/indexes/default/search"])
def test_search_skips_fastapis_handling_and_answers_the_same(
    client: TestClient, solved: list[str], routed: list[str], rng: np.random.Generator, path: str
) -> None:
    bodies = _bodies(rng)
    direct = [client.post(path, json=body) for body in bodies]
    assert all(response.status_code == 200 for response in direct), direct[0].text
    assert solved == [] and routed == [path] * len(direct)  # routed, then answered by the direct call
    # With any dependency overridden, requests go FastAPI's way: the answers must not change.
    through_fastapi = _through_fastapi(client, path, bodies)
    assert solved == [path] * len(through_fastapi) and routed == [path] * 2 * len(direct)
    assert [r.json() for r in through_fastapi] == [r.json() for r in direct]


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/v1/search", {"queries": [{"id": "no-such-item"}], "k": 3}, 404),
        ("/v1/indexes/no-such-index/search", {"queries": [{"logits": [0.5] * 10}], "k": 3}, 404),
        ("/v1/search", {"queries": [{"logits": [0.5] * 7}], "k": 3}, 422),
        ("/v1/search", {"queries": [{"logits": [0.5] * 10}], "k": 3, "metric": "cosine", "temperature": 0.5}, 200),
    ],
)
def test_direct_errors_are_the_app_handlers_answers(
    client: TestClient, solved: list[str], path: str, body: dict[str, object], status: int
) -> None:
    direct = client.post(path, json=body)
    assert solved == []  # the answer came from the direct call
    fastapi_way = _through_fastapi(client, path, [body])[0]
    assert direct.status_code == fastapi_way.status_code == status, direct.text
    assert direct.json() == fastapi_way.json()


def test_invalid_search_goes_fastapis_way_for_its_422(client: TestClient, solved: list[str]) -> None:
    response = client.post("/v1/search", json={"queries": [{"logits": [1.0] * 10}], "k": 0})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "k"]  # FastAPI's own error, with its location
    assert solved == ["/v1/search"]


def test_other_bodies_and_routes_go_fastapis_way(client: TestClient, routed: list[str], solved: list[str]) -> None:
    """A form upload to a JSON route gets the route's 415; other routes, and GETs, FastAPI's request handling."""
    upload = client.post("/v1/search", files={"file": ("q.png", b"png")})
    assert upload.status_code == 415 and "JSON body" in upload.json()["detail"]
    assert client.post("/v1/divergence", json={"a": [[0.0, 1.0]], "b": [[1.0, 0.0]]}).status_code == 200
    assert client.get("/v1/indexes/default").status_code == 200
    assert routed == ["/v1/search", "/v1/divergence", "/v1/indexes/default"]
    assert solved == ["/v1/divergence", "/v1/indexes/default"]
