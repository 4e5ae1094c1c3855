"""Hardening, round 3 (issue #32): ids that URLs cannot carry, and the page's policy on every path to it."""

import pytest
from fastapi.testclient import TestClient

GOOD = [0.5] * 10


@pytest.mark.parametrize("item_id", [".", ".."])
def test_a_dot_segment_id_is_refused_and_nothing_is_stored(client: TestClient, item_id: str) -> None:
    before = client.get("/v1/info").json()["index"]["count"]
    response = client.post(
        "/v1/items", json={"items": [{"id": "fine-1", "logits": GOOD}, {"id": item_id, "logits": GOOD}]}
    )
    assert response.status_code == 422
    assert "dot segment" in response.json()["detail"] and repr(item_id) in response.json()["detail"]
    assert client.get("/v1/items/fine-1").status_code == 404
    assert client.get("/v1/info").json()["index"]["count"] == before


def test_ids_made_of_dots_but_not_dot_segments_still_work(client: TestClient) -> None:
    for item_id in ("...", ".a", "a.."):
        assert client.post("/v1/items", json={"items": [{"id": item_id, "logits": GOOD}]}).status_code == 200
        assert client.get(f"/v1/items/{item_id}").json()["id"] == item_id


def test_the_page_under_ui_has_the_policy_of_the_page_at_the_root(client: TestClient) -> None:
    root, copy = client.get("/"), client.get("/ui/index.html")
    assert copy.status_code == 200 and copy.text == root.text
    for header in ("content-security-policy", "x-content-type-options", "referrer-policy"):
        assert copy.headers[header] == root.headers[header], header
    assert "frame-ancestors 'none'" in copy.headers["content-security-policy"]
