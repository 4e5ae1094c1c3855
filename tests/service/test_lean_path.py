"""The search routes answer small JSON requests without FastAPI's request machinery, with the very same answers."""

from collections.abc import Iterator

import numpy as np
import pytest
from fastapi import routing as fastapi_routing
from fastapi.testclient import TestClient

from service.deps import get_settings


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


def _bodies(rng: np.random.Generator) -> list[dict[str, object]]:
    query = (rng.standard_normal(10) * 4).tolist()
    return [
        {"queries": [{"logits": query}], "k": 5},
        {"queries": [{"logits": query}, {"id": "digits-3"}], "k": 3, "metric": "kl", "temperature": 2.0},
        {"queries": [{"logits": query}], "k": 4, "metric": "ce", "filter": {"split": "test"}},
    ]


@pytest.mark.parametrize("path", ["/v1/search", "/v1/indexes/default/search"])
def test_search_skips_fastapis_handling_and_answers_the_same(
    client: TestClient, solved: list[str], rng: np.random.Generator, path: str
) -> None:
    bodies = _bodies(rng)
    direct = [client.post(path, json=body) for body in bodies]
    assert all(response.status_code == 200 for response in direct), direct[0].text
    assert solved == []  # answered by the direct call
    # With any dependency overridden, requests go FastAPI's way: the answers must not change.
    overrides = client.app.dependency_overrides  # type: ignore[attr-defined]
    overrides[get_settings] = get_settings
    try:
        through_fastapi = [client.post(path, json=body) for body in bodies]
    finally:
        overrides.clear()
    assert solved == [path] * len(through_fastapi)
    assert [r.json() for r in through_fastapi] == [r.json() for r in direct]


def test_invalid_search_goes_fastapis_way_for_its_422(client: TestClient, solved: list[str]) -> None:
    response = client.post("/v1/search", json={"queries": [{"logits": [1.0] * 10}], "k": 0})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "k"]  # FastAPI's own error, with its location
    assert solved == ["/v1/search"]
