"""Binary vectors (`logits_b64`: base64 of little-endian float32) in searches, items and embeds; bad ones are 422."""

import base64

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.helpers import b64, digit_png, valid_against_openapi


def encode(values: np.ndarray) -> str:
    return base64.b64encode(np.asarray(values, dtype="<f4").tobytes()).decode()


def decode(text: str, shape: list[int]) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f4").reshape(shape)


def test_binary_queries_answer_as_json_ones(client: TestClient, rng: np.random.Generator) -> None:
    queries = (rng.standard_normal((5, 10)) * 4).astype(np.float32)
    common = {"k": 7, "metric": "kl", "temperature": 0.5, "filter": {"split": "test"}}
    as_json = client.post("/v1/search", json={"queries": [{"logits": q.tolist()} for q in queries], **common})
    one_by_one = client.post("/v1/search", json={"queries": [{"logits_b64": encode(q)} for q in queries], **common})
    batch = client.post("/v1/search", json={"logits_b64": encode(queries), "shape": [5, 10], **common})
    assert as_json.status_code == one_by_one.status_code == batch.status_code == 200, batch.text
    assert as_json.json() == one_by_one.json() == batch.json()
    assert len(batch.json()["results"]) == 5 and all(len(row) == 7 for row in batch.json()["results"])


def test_binary_items_round_trip(client: TestClient, rng: np.random.Generator) -> None:
    vectors = rng.standard_normal((2, 10)).astype(np.float32)
    items = [
        {"id": "bin-0", "logits_b64": encode(vectors[0]), "metadata": {"note": None}},
        {"id": "bin-1", "logits_b64": encode(vectors[1])},
        {"id": "bin-2", "logits_b64": encode(vectors[1])[:20] + "\n" + encode(vectors[1])[20:]},  # wrapped
    ]
    assert client.post("/v1/items", json={"items": items}).status_code == 200
    as_json = client.get("/v1/items/bin-0").json()
    assert as_json == {"id": "bin-0", "logits": vectors[0].tolist(), "metadata": {"note": None}}
    assert client.get("/v1/items/bin-2").json()["logits"] == vectors[1].tolist()
    binary = client.get("/v1/items/bin-1", params={"encoding": "base64"}).json()
    assert set(binary) == {"id", "logits_b64", "metadata"}
    assert decode(binary["logits_b64"], [10]).tolist() == vectors[1].tolist()
    page = client.get("/v1/items", params={"encoding": "base64", "limit": 3}).json()
    assert all("logits_b64" in item and "logits" not in item for item in page["items"])


def test_columnar_items_store_what_one_object_each_stores(client: TestClient, rng: np.random.Generator) -> None:
    vectors = (rng.standard_normal((3, 10)) * 4).astype(np.float32)
    ids, metadata = ["col-0", "col-1", "col-2"], [{"label": 1}, {}, {"split": "x", "n": None}]
    body = {"ids": ids, "logits_b64": encode(vectors), "shape": [3, 10], "metadata": metadata}
    response = client.post("/v1/items", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["upserted"] == 3
    for item_id, row, meta in zip(ids, vectors, metadata, strict=True):
        assert client.get(f"/v1/items/{item_id}").json() == {"id": item_id, "logits": row.tolist(), "metadata": meta}
    # Without metadata, each item gets an empty object; an upsert replaces in place.
    again = client.post("/v1/items", json={"ids": ["col-1"], "logits_b64": encode(vectors[2]), "shape": [1, 10]})
    assert again.status_code == 200, again.text
    assert client.get("/v1/items/col-1").json() == {"id": "col-1", "logits": vectors[2].tolist(), "metadata": {}}
    found = client.post("/v1/search", json={"logits_b64": encode(vectors[:1]), "shape": [1, 10], "k": 1})
    assert found.json()["results"][0][0]["id"] == "col-0"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"ids": ["a"], "logits_b64": encode(np.zeros(10))}, "give all three"),
        ({"ids": ["a", "b"], "logits_b64": encode(np.zeros(20)), "shape": [1, 20]}, "one row per id"),
        ({"ids": ["a"], "logits_b64": encode(np.zeros(10)), "shape": [1, 10], "metadata": [{}, {}]}, "one per id"),
        ({"ids": ["a"], "logits_b64": encode(np.zeros(12)), "shape": [1, 12]}, "12 values per row"),
        ({"ids": ["a"], "logits_b64": encode(np.zeros(9)), "shape": [1, 10]}, "needs 40"),
        ({"ids": ["a"], "logits_b64": encode(np.full(10, np.inf)), "shape": [1, 10]}, "must be finite"),
        ({"ids": ["a", "a"], "logits_b64": encode(np.zeros(20)), "shape": [2, 10]}, "more than once"),
        ({"ids": [""], "logits_b64": encode(np.zeros(10)), "shape": [1, 10]}, "non-empty"),
        ({"ids": ["a"], "logits_b64": encode(np.zeros(10)), "shape": [1, 10], "metadata": [[1]]}, "metadata"),
        ({"items": [{"id": "a", "logits": [0.0] * 10}], "shape": [1, 10]}, "go with ids, not with items"),
        ({"logits_b64": encode(np.zeros(10)), "shape": [1, 10]}, "exactly one of them"),
    ],
)
def test_bad_columnar_items_are_422_and_store_nothing(
    client: TestClient, body: dict[str, object], message: str
) -> None:
    count = client.get("/v1/info").json()["index"]["count"]
    response = client.post("/v1/items", json=body)
    assert response.status_code == 422, response.text
    assert message in response.text
    assert client.get("/v1/info").json()["index"]["count"] == count


def test_embed_returns_binary_on_request(client: TestClient) -> None:
    images = [b64(digit_png(i)) for i in (0, 7)]
    as_json = client.post("/v1/embed", json={"images": images, "temperature": 2.0}).json()
    binary = client.post("/v1/embed", json={"images": images, "temperature": 2.0, "encoding": "base64"}).json()
    assert set(as_json) == {"logits", "probabilities", "predicted", "labels"}
    assert binary["shape"] == [2, 10] and "logits" not in binary
    assert decode(binary["logits_b64"], [2, 10]).tolist() == as_json["logits"]
    np.testing.assert_allclose(decode(binary["probabilities_b64"], [2, 10]), as_json["probabilities"], rtol=1e-6)
    files = [("files", ("a.png", digit_png(0), "image/png"))]
    multipart = client.post("/v1/embed", files=files, data={"encoding": "base64"}).json()
    # A batch of one runs other float32 kernels than a batch of two: equal to float32 rounding.
    np.testing.assert_allclose(decode(multipart["logits_b64"], [1, 10]), as_json["logits"][:1], rtol=1e-5)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"logits_b64": "not base64!", "shape": [1, 10]}, "not valid base64"),
        ({"logits_b64": encode(np.zeros(9)), "shape": [1, 10]}, "holds 36 bytes, but shape [1, 10] needs 40"),
        ({"logits_b64": encode(np.zeros(20)), "shape": [2, 10], "queries": [{"id": "digits-0"}]}, "exactly one"),
        ({"logits_b64": encode(np.zeros(10))}, "go together"),
        ({"logits_b64": encode(np.zeros(12)), "shape": [1, 12]}, "12 values per row"),
        ({"logits_b64": encode(np.full(10, np.nan)), "shape": [1, 10]}, "must be finite"),
        ({"queries": [{"logits_b64": encode(np.zeros(11))}]}, "queries[0].logits_b64 (the model has 10 classes)"),
        ({"queries": [{"logits_b64": encode(np.zeros(10)), "id": "digits-0"}]}, "exactly one of"),
    ],
)
def test_bad_binary_vectors_are_422(client: TestClient, body: dict[str, object], message: str) -> None:
    response = client.post("/v1/search", json=body)
    assert response.status_code == 422, response.text
    assert message in response.text


def test_bad_binary_item_stores_nothing(client: TestClient) -> None:
    count = client.get("/v1/info").json()["index"]["count"]
    items = [{"id": "ok", "logits_b64": encode(np.zeros(10))}, {"id": "bad", "logits_b64": "@@@"}]
    response = client.post("/v1/items", json={"items": items})
    assert response.status_code == 422 and "items[1].logits_b64" in response.json()["detail"]
    assert client.get("/v1/info").json()["index"]["count"] == count


def test_the_schema_documents_binary_vectors() -> None:
    assert valid_against_openapi("SearchRequest", {"logits_b64": "AAAA", "shape": [1, 1]})
    assert valid_against_openapi("SearchRequest", {"queries": [{"logits_b64": "AAAA"}]})
    assert valid_against_openapi("UpsertRequest", {"items": [{"id": "x", "logits_b64": "AAAA"}]})
    assert valid_against_openapi(
        "UpsertRequest", {"ids": ["x"], "logits_b64": "AAAA", "shape": [1, 1], "metadata": [{}]}
    )
    assert not valid_against_openapi("UpsertRequest", {"ids": ["x"], "logits_b64": "AAAA"})
    assert not valid_against_openapi("SearchRequest", {"logits_b64": "AAAA"})
    assert not valid_against_openapi("SearchRequest", {"logits_b64": "AAAA", "shape": [1, 1], "queries": [{"id": "a"}]})
    assert not valid_against_openapi("SearchRequest", {"queries": [{"logits_b64": "AAAA", "logits": [1.0]}]})
