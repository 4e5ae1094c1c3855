"""Filters through the REST API: operators, derived fields at the request's T, label names, one-sentence 422s."""

from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from scipy.special import softmax

QUERY = {"queries": [{"id": "digits-0"}], "k": 40}


def _hits(client: TestClient, filter: object, **extra: object) -> list[dict[str, Any]]:
    response = client.post("/v1/search", json={**QUERY, "filter": filter, **extra})
    assert response.status_code == 200, response.text
    hits: list[dict[str, Any]] = response.json()["results"][0]
    return hits


def _logits(client: TestClient, item_id: object) -> np.ndarray:
    return np.array(client.get(f"/v1/items/{item_id}").json()["logits"], dtype=np.float64)


def test_search_filter_with_operators(client: TestClient) -> None:
    hits = _hits(client, {"label": {"$in": [7, 9]}, "$not": {"split": "train"}})
    assert len(hits) == 40
    assert all(hit["metadata"] in ({"label": 7, "split": "test"}, {"label": 9, "split": "test"}) for hit in hits)
    ranged = _hits(client, {"$or": [{"label": {"$lte": 1}}, {"label": {"$gt": 8}}]})
    assert {hit["metadata"]["label"] for hit in ranged} <= {0, 1, 9}


def test_search_filter_predicted_by_label_name_or_index(client: TestClient) -> None:
    by_name = _hits(client, {"predicted": {"$in": ["3"]}})
    assert by_name == _hits(client, {"predicted": 3}) and len(by_name) == 40
    assert all(int(np.argmax(_logits(client, hit["id"]))) == 3 for hit in by_name[:5])


@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_search_filter_on_confidence_at_the_request_temperature(client: TestClient, temperature: float) -> None:
    hits = _hits(client, {"confidence": {"$lt": 0.9}, "margin": {"$gte": 0.05}}, temperature=temperature)
    assert hits
    for hit in hits[:10]:
        probs = np.sort(softmax(_logits(client, hit["id"]) / temperature))
        assert probs[-1] < 0.9 and probs[-1] - probs[-2] >= 0.05


@pytest.mark.parametrize(
    ("filter", "start"),
    [
        ({"label": {"$in": 7}}, "$in on 'label' takes a list of values, not a number"),
        ({"label": {"$regex": "7"}}, "unknown filter operator '$regex' on field 'label'"),
        ({"predicted": "seven"}, "'seven' is not a class label of this index's model (0, 1, 2"),
        ({"predicted": 10}, "class index 10 of 'predicted' is out of range 0..9"),
        ({"entropy": {"$gt": "high"}}, "$gt on 'entropy' compares numbers only, not a string"),
    ],
)
def test_unreadable_filter_is_a_422_in_one_sentence(client: TestClient, filter: object, start: str) -> None:
    response = client.post("/v1/search", json={**QUERY, "filter": filter})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail.startswith(start)
    assert "a filter is a JSON object of" in detail and ". " not in detail


def test_agreement_takes_the_same_filters(client: TestClient) -> None:
    body = {"query": {"id": "digits-0"}, "k": 5, "filter": {"predicted": {"$in": ["0", 6]}, "label": {"$ne": 6}}}
    response = client.post("/v1/search/agreement", json=body)
    assert response.status_code == 200
    ids = response.json()["metric_ids"] + response.json()["reference_ids"]
    assert all(client.get(f"/v1/items/{i}").json()["metadata"]["label"] != 6 for i in ids)


def test_openapi_describes_the_filter_as_a_json_object(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()["components"]["schemas"]["SearchRequest"]["properties"]["filter"]
    branches = schema.get("anyOf", [schema])
    assert {"type": "object", "additionalProperties": True} in branches
    assert "$nin" in schema["description"] and "confidence" in schema["description"]
