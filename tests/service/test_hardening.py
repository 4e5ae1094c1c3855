"""Hardening: one bad string in metadata can neither be stored nor, once stored, break a read."""

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from PIL import Image

import indexes.durable
import service.catalog.registry
import service.http.inputs
import service.http.responses
from indexes.errors import InvalidInputError
from indexes.validation import check_metadata
from service.config import Settings
from service.http.inputs import decode_one

GOOD = [0.5] * 10
#: Valid JSON whose string is a lone UTF-16 surrogate: Python reads it, UTF-8 cannot encode it.
LONE_SURROGATE_BODY = (
    '{"items": [{"id": "bad-1", "logits": [0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5], "metadata": {"v": "\\ud800"}}]}'
)


@pytest.mark.parametrize(
    ("metadata", "where"),
    [
        ({"v": "\ud800"}, "metadata['v']"),
        ({"a": {"b": ["ok", "x\udfff"]}}, "metadata['a']['b'][1]"),
        ({"k\ud800": 1}, "metadata key 'k\\ud800'"),
    ],
)
def test_check_metadata_refuses_lone_surrogates(metadata: dict[str, object], where: str) -> None:
    with pytest.raises(InvalidInputError) as raised:
        check_metadata(metadata)
    assert where in str(raised.value)
    assert "UTF-8" in str(raised.value)


def test_upsert_lone_surrogate_is_422_naming_the_field(client: TestClient) -> None:
    response = client.post("/v1/items", content=LONE_SURROGATE_BODY, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert "metadata['v']" in response.json()["detail"]
    assert client.get("/v1/items/bad-1").status_code == 404


def test_reads_survive_a_stored_lone_surrogate(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Data written before the check existed: bypass it for this one write.
    monkeypatch.setattr(indexes.durable, "check_metadata", lambda metadata: metadata)
    response = client.post("/v1/items", content=LONE_SURROGATE_BODY, headers={"content-type": "application/json"})
    assert response.status_code == 200
    monkeypatch.undo()
    monkeypatch.setattr(service.http.responses, "_replaced_logged", False)

    with caplog.at_level(logging.WARNING):
        item = client.get("/v1/items/bad-1")
        assert item.status_code == 200
        assert item.json()["metadata"] == {"v": "\ufffd"}

        count = client.get("/v1/items", params={"limit": 1}).json()["count"]
        page = client.get("/v1/items", params={"offset": count - 1})
        assert page.status_code == 200
        assert {"v": "\ufffd"} in [found["metadata"] for found in page.json()["items"]]

        search = client.post("/v1/search", json={"queries": [{"logits": GOOD}], "k": 1})
        assert search.status_code == 200
        assert search.json()["results"][0][0] == {"id": "bad-1", "distance": 0.0, "metadata": {"v": "\ufffd"}}

        by_id = client.post("/v1/search", json={"queries": [{"id": "bad-1"}], "k": 1})
        assert by_id.status_code == 200
    assert any("U+FFFD" in record.getMessage() for record in caplog.records)


def test_decode_one_bounds_concurrent_decodes(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    running, most = 0, 0
    lock = threading.Lock()

    def slow_decode(data: bytes, *, max_bytes: int, max_pixels: int) -> Image.Image:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.02)
        with lock:
            running -= 1
        return Image.new("L", (8, 8))

    monkeypatch.setattr(service.http.inputs, "decode_image", slow_decode)
    bounded = settings.model_copy(update={"max_concurrent_decodes": 2})
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: decode_one(b"x", bounded, f"images[{i}]"), range(16)))
    assert most == 2


def test_a_slow_index_creation_stalls_no_other_request(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """While one creation waits on its store (a database whose table is locked), other indexes and /health
    answer at once: the catalog lock is not held across it."""
    release, waiting = threading.Event(), threading.Event()
    make = service.catalog.registry.create_store

    def slow_create_store(*args: object, **kwargs: object) -> object:
        waiting.set()
        release.wait(10)
        return make(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(service.catalog.registry, "create_store", slow_create_store)
    with ThreadPoolExecutor(1) as pool:
        created = pool.submit(client.post, "/v1/indexes", json={"name": "slow-one", "model": "digits-cnn"})
        assert waiting.wait(10)
        try:
            start = time.perf_counter()
            assert client.get("/health").status_code == 200
            assert client.post("/v1/search", json={"queries": [{"logits": GOOD}], "k": 3}).status_code == 200
            assert client.post("/v1/indexes", json={"name": "slow-one", "model": "digits-cnn"}).status_code == 409
            elapsed = time.perf_counter() - start
        finally:
            release.set()
        assert created.result(timeout=30).status_code == 201
    assert elapsed < 1.0
    assert client.get("/v1/indexes/slow-one").status_code == 200
