"""Browsing over HTTP: filtered, ordered listings with cursors, counts with facets, deletes by filter (durable
across a SIGKILL), from curl-like requests and from the Python client."""

import json
import signal
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.client import Client, LogitSearchError
from service.config import Settings
from tests import filter_oracle
from tests.servers import free_port, serving, start_serve_process

DIM = 10


def _items(n: int = 40, seed: int = 0) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    logits = (rng.standard_normal((n, DIM)) * 3).astype(np.float32)
    return [
        {
            "id": f"b-{i:03d}",
            "logits": logits[i].tolist(),
            "metadata": {"label": i % 4, "split": ["a", "b"][i % 2], "mine": True},
        }
        for i in range(n)
    ]


def _matching(items: list[dict[str, Any]], filter: dict[str, Any], t: float = 1.0) -> list[str]:
    return [item["id"] for item in items if filter_oracle.matches(filter, item["logits"], item["metadata"], t)]


@pytest.fixture
def filled(client: TestClient) -> list[dict[str, Any]]:
    items = _items()
    assert client.post("/v1/items", json={"items": items}).status_code == 200
    return items


def test_get_items_applies_the_filter_it_was_given(client: TestClient, filled: list[dict[str, Any]]) -> None:
    filter = {"label": {"$in": [1, 3]}, "split": "b"}
    response = client.get("/v1/items", params={"filter": json.dumps(filter), "limit": 1000})
    assert response.status_code == 200
    page = response.json()
    assert [item["id"] for item in page["items"]] == _matching(filled, filter) and "next" not in page
    assert page["count"] == len(_matching(filled, filter))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"filtre": "{}"}, "unknown query parameter(s) filtre"),
        ({"filter": "{label: 1}"}, "filter is not JSON"),
        ({"filter": "[1]"}, "filter must be a JSON object"),
        ({"filter": '{"label": {"$regex": "a"}}'}, "unknown filter operator '$regex'"),
        ({"offset": 5, "filter": "{}"}, "offset pages every item in insertion order"),
        ({"order": "size"}, "cannot order by 'size'"),
        ({"cursor": "nonsense"}, "cursor is not a cursor this service gave"),
    ],
)
def test_a_listing_it_cannot_read_is_a_422_that_says_why(
    client: TestClient, params: dict[str, Any], message: str
) -> None:
    response = client.get("/v1/items", params=params)
    assert response.status_code == 422 and message in response.json()["detail"]


def test_pages_by_cursor_in_a_derived_order_cover_the_listing_once(
    client: TestClient, filled: list[dict[str, Any]]
) -> None:
    filter, listed, cursor = {"split": "a"}, [], None
    while True:
        body = {"filter": filter, "order": "confidence:asc", "temperature": 2.0, "limit": 6, "cursor": cursor}
        page = client.post("/v1/items/list", json=body).json()
        listed += [item["id"] for item in page["items"]]
        if "next" not in page:
            break
        cursor = page["next"]
    expected = _matching(filled, filter)
    by_id = {item["id"]: item["logits"] for item in filled}
    confidence = [filter_oracle.derived(by_id[i], "confidence", 2.0) for i in listed]
    assert sorted(listed) == sorted(expected) and confidence == sorted(confidence)
    other = client.post("/v1/items/list", json={"filter": filter, "order": "confidence:desc", "cursor": cursor})
    assert other.status_code == 422 and "belongs to another listing" in other.json()["detail"]


def test_count_groups_by_a_key_and_by_predicted_class_with_label_names(
    client: TestClient, filled: list[dict[str, Any]]
) -> None:
    answer = client.post("/v1/count", json={"filter": {"split": "a"}, "group_by": "label"}).json()
    assert answer["count"] == 20 and answer["missing"] == 0 and not answer["more"]
    assert {g["value"]: g["count"] for g in answer["groups"]} == {0: 10, 2: 10}
    digits = client.post("/v1/count", json={"filter": {"split": {"$nin": ["a", "b"]}}, "group_by": "predicted"}).json()
    total = client.post("/v1/count", json={}).json()
    assert total == {"count": digits["count"] + 40}
    assert sum(g["count"] for g in digits["groups"]) == digits["count"]
    assert all(g["label"] == str(g["value"]) for g in digits["groups"])  # the digits model's labels: "0".."9"
    refused = client.post("/v1/count", json={"group_by": "entropy"})
    assert refused.status_code == 422 and "continuous value" in refused.json()["detail"]


def test_delete_by_filter_needs_a_filter_or_all_and_a_write_key(settings: Settings) -> None:
    from service.app import create_app

    keyed = Settings(**(settings.model_dump() | {"api_key": "secret"}))
    with TestClient(create_app(keyed)) as client:
        headers = {"Authorization": "Bearer secret"}
        client.post("/v1/items", json={"items": _items()}, headers=headers)
        assert client.post("/v1/items/delete", json={"filter": {"label": 1}}).status_code == 401
        empty = client.post("/v1/items/delete", json={"filter": {}}, headers=headers)
        assert empty.status_code == 422 and '"all": true' in empty.json()["detail"]
        mine = {"label": 1, "split": "b"}  # the digits hold labels too, and split "train" or "test"
        answer = client.post("/v1/items/delete", json={"filter": mine}, headers=headers).json()
        before = client.post("/v1/count", json={}, headers=headers).json()["count"]
        assert answer["deleted"] == 10 and answer["count"] == before
        everything = client.post("/v1/items/delete", json={"filter": {}, "all": True}, headers=headers).json()
        assert everything == {"deleted": before, "count": 0}


def test_a_delete_by_filter_acknowledged_survives_a_sigkill(settings: Settings) -> None:
    port = free_port()
    process = start_serve_process(settings.data_dir, port)
    url = f"http://127.0.0.1:{port}"
    try:
        items = _items(60, seed=3)
        with httpx.Client(base_url=url, timeout=30) as http:
            assert http.post("/v1/items", json={"items": items}).status_code == 200
            filter = {"mine": True, "$or": [{"label": 2}, {"split": "b", "confidence": {"$gt": 0.9}}]}
            answer = http.post("/v1/items/delete", json={"filter": filter}).json()
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        doomed = set(_matching(items, filter))
        assert answer["deleted"] == len(doomed) > 0
        process = start_serve_process(settings.data_dir, port)
        with Client(url) as client:
            stored = {item.id for item in client.iter_items(filter={"mine": True})}
        assert stored == {item["id"] for item in items} - doomed
    finally:
        process.kill()
        process.wait(timeout=30)


def test_the_client_lists_counts_and_deletes_by_filter_on_a_named_index(settings: Settings) -> None:
    with serving(settings) as url, Client(url) as client:
        client.create_index("shelf", model="digits-cnn")
        items = _items(30, seed=5)
        client.upsert(
            [i["id"] for i in items],
            logits=[i["logits"] for i in items],
            metadata=[i["metadata"] for i in items],
            index="shelf",
        )
        listed = list(client.iter_items(filter={"label": {"$ne": 0}}, order="entropy:desc", index="shelf", page_size=4))
        assert sorted(item.id for item in listed) == sorted(_matching(items, {"label": {"$ne": 0}}))
        first = client.list_items(limit=5, index="shelf")
        assert [item.id for item in first.items] == [item["id"] for item in items[:5]] and first.next
        following = client.list_items(limit=5, cursor=first.next, index="shelf")
        assert [item.id for item in following.items] == [item["id"] for item in items[5:10]]
        counted = client.count(group_by="split", index="shelf")
        assert counted.count == 30 and {g.value: g.count for g in counted.groups or []} == {"a": 15, "b": 15}
        assert client.delete_items({"label": 0}, index="shelf").deleted == 8
        with pytest.raises(LogitSearchError, match='"all": true'):
            client.delete_items({}, index="shelf")
        assert client.delete_items({}, all=True, index="shelf").count == 0
