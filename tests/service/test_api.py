"""The REST API through TestClient: every endpoint, its oracle, and its 4xx errors."""

import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from scipy.special import log_softmax, rel_entr, softmax

from models import load_digit_images
from service.app import create_app
from service.config import Settings
from tests.helpers import all_items, b64, brute_force, brute_force_l2, digit_png


def test_health_ready_info(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.json()["count"] == 1797
    info = client.get("/v1/info").json()
    assert info["model"]["name"] == "digits-cnn" and info["model"]["num_classes"] == 10
    assert info["model"]["labels"] == [str(i) for i in range(10)] and len(info["model"]["sha256"]) == 64
    assert info["index"] == {"name": "default", "count": 1797, "dim": 10, "device": "cpu", "index_type": "IndexFlatL2"}


def test_default_index_holds_every_digit(client: TestClient) -> None:
    digits = load_digit_images()
    item = client.get("/v1/items/digits-17").json()
    assert item["metadata"] == {"label": int(digits.labels[17]), "split": str(digits.split[17])}
    splits = [client.get(f"/v1/items/digits-{i}").json()["metadata"]["split"] for i in range(0, 1797, 97)]
    assert set(splits) == {"train", "test"}


@pytest.mark.parametrize("i", [0, 5, 1000, 1796])
def test_digit_png_finds_itself(client: TestClient, i: int) -> None:
    response = client.post("/v1/search", json={"queries": [{"image": b64(digit_png(i))}], "k": 3})
    assert response.status_code == 200
    top = response.json()["results"][0][0]
    assert top["id"] == f"digits-{i}" and top["distance"] < 1e-3


def test_base64_may_be_wrapped_or_a_data_url(client: TestClient) -> None:
    encoded = b64(digit_png(11))
    wrapped = "\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))
    for image in (wrapped, f"data:image/png;base64,{encoded}"):
        hits = client.post("/v1/search", json={"queries": [{"image": image}], "k": 1}).json()["results"][0]
        assert hits[0]["id"] == "digits-11"


def test_search_image_multipart(client: TestClient) -> None:
    response = client.post(
        "/v1/search/image",
        files={"file": ("d.png", digit_png(42), "image/png")},
        data={"k": "4", "metric": "l2", "temperature": "2"},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["metric"] == "l2" and body["temperature"] == 2.0
    assert len(body["results"][0]) == 4 and body["results"][0][0]["id"] == "digits-42"


def test_search_by_logits_matches_brute_force(client: TestClient, rng: np.random.Generator) -> None:
    ids, vectors = all_items(client)
    queries = (rng.standard_normal((25, 10)) * 8).astype(np.float32)
    response = client.post("/v1/search", json={"queries": [{"logits": q.tolist()} for q in queries], "k": 15})
    assert response.status_code == 200
    oracle = brute_force_l2(queries, vectors)
    for row, hits in zip(oracle, response.json()["results"], strict=True):
        position = {item_id: j for j, item_id in enumerate(ids)}
        np.testing.assert_allclose([h["distance"] for h in hits], np.sort(row)[:15], rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(
            [h["distance"] for h in hits], row[[position[h["id"]] for h in hits]], rtol=1e-5, atol=1e-4
        )


def test_search_by_id_includes_itself_and_mixes_sources(client: TestClient) -> None:
    item = client.get("/v1/items/digits-7").json()
    queries = [{"id": "digits-7"}, {"logits": item["logits"]}, {"image": b64(digit_png(7))}]
    results = client.post("/v1/search", json={"queries": queries, "k": 5}).json()["results"]
    assert [r[0]["id"] for r in results] == ["digits-7"] * 3
    assert results[0] == results[1]


def test_search_filters(client: TestClient) -> None:
    query = {"queries": [{"id": "digits-0"}], "k": 30}
    for filter, check in [
        ({"label": 3}, lambda m, item: m["label"] == 3),
        ({"split": "test", "label": 0}, lambda m, item: m["split"] == "test" and m["label"] == 0),
        ({"predicted": 8}, lambda m, item: int(np.argmax(item["logits"])) == 8),
    ]:
        hits = client.post("/v1/search", json={**query, "filter": filter}).json()["results"][0]
        assert len(hits) == 30
        for hit in hits:
            assert check(hit["metadata"], client.get(f"/v1/items/{hit['id']}").json())
    none = client.post("/v1/search", json={**query, "filter": {"label": 99}}).json()["results"][0]
    assert none == []


def test_a_filter_on_numbers_and_strings_alike_is_422(client: TestClient) -> None:
    item = {"id": "folder/7.png", "logits": [0.0] * 10, "metadata": {"label": "7"}}
    assert client.post("/v1/items", json={"items": [item]}).status_code == 200
    query = {"queries": [{"id": "digits-0"}], "k": 5, "filter": {"label": 7}}
    response = client.post("/v1/search", json=query)
    assert response.status_code == 422
    assert response.json()["detail"] == (
        'filter {"label": 7} matches the number 7, but 1 item(s) hold the string "7" in \'label\', which it would '
        "skip: the field holds both numbers and strings. Store one type (upsert those items again), or search once "
        "with each"
    )
    item["metadata"] = {"label": 7}  # stored as the digits store it: the filter matches all of them
    assert client.post("/v1/items", json={"items": [item]}).status_code == 200
    hits = client.post("/v1/search", json={**query, "k": 500}).json()["results"][0]
    assert len(hits) == 180 and "folder/7.png" in {hit["id"] for hit in hits}


def test_k_larger_than_index_returns_everything(client: TestClient) -> None:
    hits = client.post("/v1/search", json={"queries": [{"id": "digits-1"}], "k": 2000}).json()["results"][0]
    assert len(hits) == 1797 and len({h["id"] for h in hits}) == 1797


def test_items_crud(client: TestClient) -> None:
    logits = [float(i) for i in range(10)]
    created = client.post(
        "/v1/items",
        json={
            "items": [
                {"id": "mine", "logits": logits, "metadata": {"source": "test"}},
                {"id": "img", "image": b64(digit_png(3)), "metadata": {}},
            ]
        },
    )
    assert created.json() == {"upserted": 2, "count": 1799}
    assert client.get("/v1/items/mine").json() == {"id": "mine", "logits": logits, "metadata": {"source": "test"}}
    img = client.get("/v1/items/img").json()
    np.testing.assert_allclose(img["logits"], client.get("/v1/items/digits-3").json()["logits"], atol=1e-5)
    replaced = client.post("/v1/items", json={"items": [{"id": "mine", "logits": logits[::-1]}]})
    assert replaced.json() == {"upserted": 1, "count": 1799}
    assert client.get("/v1/items/mine").json()["logits"] == logits[::-1]
    assert client.delete("/v1/items/mine").json() == {"deleted": "mine"}
    assert client.get("/v1/items/mine").status_code == 404
    assert client.delete("/v1/items/mine").status_code == 404
    assert client.get("/v1/items", params={"limit": 1}).json()["count"] == 1798


def test_items_pages_are_in_insertion_order(client: TestClient) -> None:
    ids, _ = all_items(client)
    assert ids == [f"digits-{i}" for i in range(1797)]  # digits-2 before digits-10, as they were added
    added = client.post("/v1/items", json={"items": [{"id": "a-new", "logits": [0.0] * 10}]})
    assert added.status_code == 200
    assert client.delete("/v1/items/digits-0").status_code == 200
    page = client.get("/v1/items", params={"offset": 1795, "limit": 5}).json()
    assert [item["id"] for item in page["items"]] == ["digits-1796", "a-new"] and page["count"] == 1797


def test_embed_json_and_multipart(client: TestClient) -> None:
    digits = load_digit_images()
    indices = [0, 1, 2, 3, 4]
    response = client.post("/v1/embed", json={"images": [b64(digit_png(i)) for i in indices], "temperature": 2.0})
    assert response.status_code == 200
    body = response.json()
    logits = np.array(body["logits"])
    np.testing.assert_allclose(body["probabilities"], softmax(logits / 2.0, axis=1), atol=1e-6)
    assert body["predicted"] == logits.argmax(1).tolist()
    assert body["predicted"] == digits.labels[indices].tolist()
    stored = [client.get(f"/v1/items/digits-{i}").json()["logits"] for i in indices]
    np.testing.assert_allclose(logits, stored, atol=1e-5)
    files = [("files", (f"{i}.png", digit_png(i), "image/png")) for i in indices]
    multipart = client.post("/v1/embed", files=files, data={"temperature": "2.0"}).json()
    np.testing.assert_allclose(multipart["logits"], body["logits"], atol=1e-6)


def test_divergence_matches_scipy(client: TestClient, rng: np.random.Generator) -> None:
    a, b = rng.standard_normal((4, 10)) * 3, rng.standard_normal((4, 10)) * 3
    body = {"a": a.tolist(), "b": b.tolist(), "temperature": 2.0, "base": "2"}
    values = client.post("/v1/divergence", json=body).json()["values"]
    p, q = softmax(a / 2, axis=1), softmax(b / 2, axis=1)
    np.testing.assert_allclose(values["kl"], rel_entr(p, q).sum(1) / np.log(2), rtol=1e-6)
    np.testing.assert_allclose(values["ce"], -(p * log_softmax(b / 2, axis=1)).sum(1) / np.log(2), rtol=1e-6)
    np.testing.assert_allclose(values["euclidean"], np.linalg.norm(a - b, axis=1), rtol=1e-6)
    pairwise = client.post("/v1/divergence", json={**body, "pairwise": True, "measures": ["js"]}).json()
    assert list(pairwise["values"]) == ["js"] and np.array(pairwise["values"]["js"]).shape == (4, 4)


def test_divergence_infinite_is_null(client: TestClient) -> None:
    body = {"a": [0.5, 0.5], "b": [1.0, 0.0], "input": "probabilities", "measures": ["kl", "js"]}
    values = client.post("/v1/divergence", json=body).json()["values"]
    assert values["kl"] == [None]
    # m = (0.75, 0.25): js = 1/2 kl(p, m) + 1/2 kl(q, m), by hand
    expected = 0.5 * (0.5 * np.log(0.5 / 0.75) + 0.5 * np.log(0.5 / 0.25)) + 0.5 * np.log(1 / 0.75)
    assert values["js"][0] == pytest.approx(expected, rel=1e-9)


BAD_SEARCHES = [
    ({"queries": [{"logits": [1.0] * 9}]}, 422, "10-dimensional"),
    ({"queries": []}, 422, "at least 1"),
    ({"queries": [{"logits": [1.0] * 10}], "k": 0}, 422, "greater than or equal to 1"),
    ({"queries": [{"logits": [1.0] * 10}], "k": 5000}, 422, "MAX_K"),
    ({"queries": [{"logits": [1.0] * 10}], "metric": "hamming"}, 422, "unknown metric"),
    ({"queries": [{"logits": [1.0] * 10}], "temperature": 0}, 422, "greater than 0"),
    ({"queries": [{"id": "nope"}]}, 404, "nope"),
    ({"queries": [{"image": "not base64!"}]}, 422, "base64"),
    ({"queries": [{"image": b64(b"plain text, not an image")}]}, 422, "not a supported image"),
    ({"queries": [{"logits": [1.0] * 10, "id": "digits-1"}]}, 422, "exactly one"),
    ({"queries": [{"logits": [1.0] * 10}] * 65}, 422, "MAX_BATCH"),
    ({"queries": [{"logits": [1.0] * 10}], "filter": {"label": [1, 2]}}, 422, "filter"),
    ({"queries": [{"logits": [1.0] * 10}], "filter": {"predicted": "three"}}, 422, "not a class label"),
]


@pytest.mark.parametrize(("body", "status", "message"), BAD_SEARCHES)
def test_bad_search_is_4xx(client: TestClient, body: dict[str, object], status: int, message: str) -> None:
    response = client.post("/v1/search", json=body)
    assert response.status_code == status
    assert message in str(response.json()["detail"])


def test_non_finite_json_numbers_are_refused(client: TestClient) -> None:
    for literal in ("NaN", "Infinity", "-Infinity", "1e999"):
        raw = '{"queries": [{"logits": [' + ", ".join(["1.0"] * 9 + [literal]) + "]}]}"
        response = client.post("/v1/search", content=raw, headers={"content-type": "application/json"})
        assert response.status_code == 422, literal
        assert "finite" in str(response.json()["detail"])


def test_oversized_image_is_413(settings: Settings) -> None:
    small = Settings(**(settings.model_dump() | {"max_image_bytes": 100}))
    with TestClient(create_app(small)) as client:
        response = client.post("/v1/search", json={"queries": [{"image": b64(digit_png(0) + b"\0" * 200)}]})
        assert response.status_code == 413 and "limit" in response.json()["detail"]


def test_decompression_bomb_is_413(client: TestClient) -> None:
    buffer = io.BytesIO()
    Image.new("1", (6000, 6000)).save(buffer, format="PNG")  # 36 Mpx, a few kB
    response = client.post("/v1/embed", json={"images": [b64(buffer.getvalue())]})
    assert response.status_code == 413 and "pixels" in response.json()["detail"]


def test_bad_upsert_stores_nothing(client: TestClient) -> None:
    items = [{"id": "good", "logits": [0.0] * 10}, {"id": "bad", "logits": [0.0] * 11}]
    assert client.post("/v1/items", json={"items": items}).status_code == 422
    duplicate = [{"id": "dup", "logits": [0.0] * 10}] * 2
    response = client.post("/v1/items", json={"items": duplicate})
    assert response.status_code == 422 and "more than once" in response.json()["detail"]
    assert client.get("/v1/items/good").status_code == 404
    assert client.get("/v1/items", params={"limit": 1}).json()["count"] == 1797


def test_api_key_protects_everything_but_health(settings: Settings) -> None:
    keyed = Settings(**(settings.model_dump() | {"api_key": "s3cret"}))
    item = {"items": [{"id": "k", "logits": [0.0] * 10}]}
    with TestClient(create_app(keyed)) as client:
        assert client.post("/v1/items", json=item).status_code == 401
        assert client.post("/v1/items", json=item, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.post("/v1/items", json=item, headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert client.delete("/v1/items/k").status_code == 401
        assert client.delete("/v1/items/k", headers={"X-API-Key": "s3cret"}).status_code == 200
        assert client.get("/v1/items/digits-1").status_code == 401  # reads need the key too
        assert client.get("/v1/items/digits-1", headers={"X-API-Key": "s3cret"}).status_code == 200
        for path in (
            "/v1/info",
            "/metrics",
            "/docs",
            "/redoc",
            "/docs/assets/swagger-ui.css",
            "/openapi.json",
            "/v1/indexes",
            "/v1/models",
        ):
            assert client.get(path).status_code == 401, path
        assert client.post("/v1/embed", json={"images": ["eA=="]}).status_code == 401
        assert client.get("/health").status_code == 200 and client.get("/ready").status_code == 200


def test_metrics_count_requests(client: TestClient) -> None:
    client.post("/v1/search", json={"queries": [{"id": "digits-1"}], "k": 1})
    text = client.get("/metrics").text
    assert 'logitsearch_requests_total{handler="search_neighbors",method="POST",status="200"} 1.0' in text
    assert 'logitsearch_queries_total{index="default",metric="l2"} 1.0' in text


@pytest.mark.parametrize("metric", ["l2", "l2_centered", "ce", "kl", "kl_reverse", "js", "tri", "cosine"])
def test_every_metric_matches_brute_force_on_the_digits(client: TestClient, metric: str) -> None:
    ids, vectors = all_items(client)
    queries = vectors[[3, 500, 1200]] + 0.5
    body = {"queries": [{"logits": q.tolist()} for q in queries], "k": 10, "metric": metric, "temperature": 4.0}
    response = client.post("/v1/search", json=body)
    assert response.status_code == 200 and response.json()["metric"] == metric
    results = response.json()["results"]
    oracle = brute_force(metric, queries, vectors, 4.0)
    position = {item_id: j for j, item_id in enumerate(ids)}
    for row, hits in zip(oracle, results, strict=True):
        np.testing.assert_allclose([h["distance"] for h in hits], np.sort(row)[:10], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(
            [h["distance"] for h in hits], row[[position[h["id"]] for h in hits]], rtol=1e-5, atol=1e-6
        )
    # every value search returns can be recomputed with /v1/divergence
    hit = results[0][3]
    item = client.get(f"/v1/items/{hit['id']}").json()
    again = client.post(
        "/v1/divergence", json={"a": queries[0].tolist(), "b": item["logits"], "temperature": 4.0, "measures": [metric]}
    ).json()["values"][metric][0]
    assert again == pytest.approx(hit["distance"], rel=1e-6, abs=1e-9)


def test_search_image_shortcut_takes_metric_and_temperature(client: TestClient) -> None:
    response = client.post(
        "/v1/search/image",
        files={"file": ("d.png", digit_png(42), "image/png")},
        data={"k": "3", "metric": "kl", "temperature": "8"},
    )
    body = response.json()
    assert body["metric"] == "kl" and body["results"][0][0]["id"] == "digits-42"
    assert body["results"][0][0]["distance"] < 1e-6
    bad = client.post(
        "/v1/search/image",
        files={"file": ("d.png", digit_png(1), "image/png")},
        data={"metric": "kl", "temperature": "0"},
    )
    assert bad.status_code == 422
