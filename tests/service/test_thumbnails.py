"""Thumbnail routes: the digits' own at build time, uploads keep theirs, headers, 404s, the per-index switch."""

import io
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from models import load_digit_images
from service.app import create_app
from service.catalog.registry import Catalog
from service.config import Settings
from tests.helpers import b64, digit_png


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, default_data_dir: Path) -> Iterator[TestClient]:
    """One app for the tests that only add items of their own (a copy of the default data dir)."""
    data_dir = tmp_path_factory.mktemp("thumbnails") / "data"
    shutil.copytree(default_data_dir, data_dir)
    with TestClient(create_app(Settings(data_dir=data_dir, device="cpu", faiss_gpu="false", num_threads=2))) as c:
        yield c


def _photo_png(rng: np.random.Generator, width: int = 300, height: int = 200) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_each_digit_has_its_pixels_enlarged_as_a_thumbnail(shared: TestClient) -> None:
    client = shared
    pixels = load_digit_images().images[1234]
    response = client.get("/v1/items/digits-1234/thumbnail")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert response.headers["cache-control"] == "private, no-cache" and response.headers["etag"].startswith('"')
    image = np.asarray(Image.open(io.BytesIO(response.content)))
    assert np.array_equal(image, np.kron(pixels, np.ones((12, 12), np.uint8)))
    again = client.get("/v1/items/digits-1234/thumbnail", headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert client.get("/v1/indexes/default/items/digits-1234/thumbnail").content == response.content


def test_items_added_from_images_keep_a_thumbnail_until_replaced_or_deleted(
    shared: TestClient, rng: np.random.Generator
) -> None:
    client = shared
    items = [
        {"id": "photos/cat.png", "image": b64(_photo_png(rng)), "metadata": {"kind": "photo"}},
        {"id": "seven", "image": b64(digit_png(7))},
        {"id": "plain", "logits": [0.0] * 10},
    ]
    assert client.post("/v1/items", json={"items": items}).status_code == 200
    photo = client.get("/v1/items/photos/cat.png/thumbnail")
    assert photo.status_code == 200 and photo.headers["content-type"] in ("image/webp", "image/png")
    assert Image.open(io.BytesIO(photo.content)).size == (96, 64) and len(photo.content) <= 16384
    assert client.get("/v1/items/photos/cat.png").json()["metadata"] == {"kind": "photo"}  # the item route still
    seven = client.get("/v1/items/seven/thumbnail")
    assert seven.content == client.get("/v1/items/digits-7/thumbnail").content  # same pixels, same PNG
    missing = client.get("/v1/items/plain/thumbnail")
    assert missing.status_code == 404 and "added from logits" in missing.json()["detail"]
    assert client.get("/v1/items/nope/thumbnail").status_code == 404

    client.post("/v1/items", json={"items": [{"id": "seven", "logits": [1.0] * 10}]})
    assert client.get("/v1/items/seven/thumbnail").status_code == 404  # replaced from logits: no picture
    client.delete("/v1/items/photos/cat.png")
    assert client.get("/v1/items/photos/cat.png/thumbnail").status_code == 404


def test_an_index_created_without_thumbnails_keeps_none(shared: TestClient) -> None:
    client = shared
    created = client.post("/v1/indexes", json={"name": "bare", "model": "digits-cnn", "thumbnails": False})
    assert created.status_code == 201 and created.json()["thumbnails"] is False
    assert client.get("/v1/indexes/default").json()["thumbnails"] is True
    item = {"items": [{"id": "seven", "image": b64(digit_png(7))}]}
    assert client.post("/v1/indexes/bare/items", json=item).status_code == 200
    assert client.get("/v1/indexes/bare/items/seven/thumbnail").status_code == 404


def test_thumbnails_survive_a_restart(client: TestClient, rng: np.random.Generator) -> None:
    client.post("/v1/items", json={"items": [{"id": "p", "image": b64(_photo_png(rng, 120, 90))}]})
    before = client.get("/v1/items/p/thumbnail").content
    app = client.app
    client.__exit__(None, None, None)  # the lifespan closes the stores: the log is folded into a snapshot
    with TestClient(app) as again:
        assert again.get("/v1/items/p/thumbnail").content == before
        assert again.get("/v1/items/digits-3/thumbnail").status_code == 200


def test_digits_of_an_index_built_before_thumbnails_get_theirs_at_start(settings: Settings) -> None:
    catalog = Catalog(settings)
    catalog.open()
    store = catalog.store("default")
    old = [store.get(f"digits-{i}") for i in range(3)]
    store.upsert([o.id for o in old], np.stack([o.logits for o in old]), [o.metadata for o in old])  # as before
    store.upsert(["digits-2"], old[2].logits[None] + 1.0, [old[2].metadata])  # a user replaced this one
    store.delete("digits-3")
    catalog.close()
    with TestClient(create_app(settings)) as client:
        for i in (0, 1):
            assert client.get(f"/v1/items/digits-{i}/thumbnail").status_code == 200
            assert client.get(f"/v1/items/digits-{i}").json()["logits"] == old[i].logits.tolist()
        assert client.get("/v1/items/digits-2/thumbnail").status_code == 404
        assert client.get("/v1/items/digits-3").status_code == 404
